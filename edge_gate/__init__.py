"""edge-gate: an access-control daemon for camera-fronted doors."""

__version__ = "0.1.0"
