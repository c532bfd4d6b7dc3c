"""Encrypted face gallery: key ring, AES-GCM record store with an authenticated manifest,
open-set 1:N matching, threshold calibration and enrollment."""
