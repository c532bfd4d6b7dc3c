"""One exception tree for real errors.

Expected outcomes (no face, not live, unknown person, relay NACK) are values, not
exceptions. These classes are for faults: bad config, tampered files, broken peers.
Adapters wrap third-party errors with ``raise ... from e``.
"""

from __future__ import annotations


class EdgeGateError(Exception):
    """Base of every error edge-gate raises on purpose."""


class ConfigError(EdgeGateError):
    """The configuration file is missing, unreadable or invalid."""


class SecretFileError(EdgeGateError):
    """A key or credential file is missing, not a regular file, or too permissive."""


class ModelIntegrityError(EdgeGateError):
    """A model file is missing or does not match its manifest sha256."""


class ModelRuntimeError(EdgeGateError):
    """The TFLite runtime is unavailable or failed to run a model."""


class ImageError(EdgeGateError):
    """An image could not be read: unreadable, truncated, oversized or not an image."""


class GalleryError(EdgeGateError):
    """The gallery store could not be opened or written."""


class CardInUseError(GalleryError):
    """A card cannot be given to a person: another person already holds it."""


class GalleryTamperedError(GalleryError):
    """The gallery failed its integrity checks (tampering, swap, deletion or rollback)."""


class RelayError(EdgeGateError):
    """The relay controller link failed (unavailable, timeout, bad answer)."""


class CaptureError(EdgeGateError):
    """A camera source could not be opened or read."""


class AuditError(EdgeGateError):
    """The audit outbox or publisher failed."""
