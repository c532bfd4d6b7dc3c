"""Face embedders: one module per family (crop, normalisation), a registry, and the runner."""
