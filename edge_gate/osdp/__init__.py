"""OSDP v2 (IEC 60839-11-5) with Secure Channel, on libosdp: edge-gate as a control panel (CP)
polling readers/IO modules, or as a peripheral device (PD) reporting to a building's panel.

Layers: ``cards`` and ``messages`` are pure (credential codecs, typed events and commands);
``link`` (the serial channel libosdp is handed), ``keys`` (SCBK files), ``panel`` (CP) and
``peripheral`` (PD) are adapters. libosdp never opens a port itself: it gets a
:class:`~edge_gate.osdp.link.SerialLink`.
"""
