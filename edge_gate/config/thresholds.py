"""Calibrated default match thresholds, one per embedder set (issue 11).

Each value is the pairwise FAR 1e-5 point of the *tuning* side of the held-out, by-person split
(``python -m edge_gate_dev.vision.heldout``: 92 people, 533 real faces, door views 64/40/32 px,
285,444 tuning-side impostor pairs), rounded up to three decimals (a little stricter). The test
side of that split (people never used for tuning) is what the README reports at these values.

Why 1e-5 and not 1e-4: a door compares every frame with every template of every enrolled person,
so a stranger's chance per frame grows with the gallery (about people x 3 templates x pairwise
FAR: 3 % for 100 people at 1e-4). At the 1e-4 points (fusion 0.7672, mobilefacenet 0.6085) the
ORL + johns open set (22-23 people enrolled) let 7 of 455 impostor probes in; at these, none.
The door's K-of-N does not cure a real look-alike, whose frames are alike too.

A set not in this table has no honest default: the config must name ``gallery.threshold``
(measure it with ``edge-gate calibrate``). Non-default variants (``mobilefacenet-fp16``,
``facenet-fp16``, …) and unequal ``vision.embedder_weights`` change the score distribution, so
they are not covered.
"""

from __future__ import annotations

from collections.abc import Sequence

# family → the variant the calibration ran (the manifest's default variant of that family)
_CALIBRATED_VARIANT = {
    "mobilefacenet": "mobilefacenet-fp32",
    "dlib-resnet": "dlib-resnet-fp16",
    "facenet": "facenet-int8",
}

# sorted families → threshold (fused score = equal-weight mean of the per-model cosines,
# so the order of the set does not change it); comment: the measured FAR 1e-5 point
CALIBRATED_THRESHOLDS: dict[tuple[str, ...], float] = {
    ("mobilefacenet",): 0.647,  # 0.6468
    ("dlib-resnet",): 0.951,  # 0.9509 (dlib's cosines are compressed: impostors reach 0.95)
    ("facenet",): 0.585,  # 0.5847
    ("dlib-resnet", "mobilefacenet"): 0.789,  # 0.7889
    ("dlib-resnet", "facenet", "mobilefacenet"): 0.716,  # 0.7158
}


def _family(name: str) -> str | None:
    for family, variant in _CALIBRATED_VARIANT.items():
        if name in (family, variant):
            return family
    return None


def calibrated_threshold(
    embedders: Sequence[str], weights: Sequence[float] | None = None
) -> float | None:
    """The shipped default for ``embedders`` (manifest ids or families), None if not calibrated."""
    if weights is not None and len(set(weights)) > 1:
        return None
    families = [_family(n) for n in embedders]
    if any(f is None for f in families) or len(set(families)) != len(families):
        return None
    key = tuple(sorted(f for f in families if f is not None))
    return CALIBRATED_THRESHOLDS.get(key)
