"""Open-set identification figures on real faces."""
