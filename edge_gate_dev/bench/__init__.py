"""``edge-gate bench`` sections: one module per subsystem, each returning a JSON-able dict."""
