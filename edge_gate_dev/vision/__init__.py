"""Verification figures of the embedders on real faces."""
