"""The door relay: authenticated unlock over a serial line (protocol in deploy/relay-protocol.md).

Layers: ``framing`` and ``codec`` and ``relay_core`` are pure (no I/O, no clocks);
``transport``, ``keys``, ``counter``, ``client``, ``worker``, ``sim`` and ``bench`` are adapters
and composition.
"""
