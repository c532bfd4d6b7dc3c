"""Quality gates (pure core): is this face good enough to be evidence?

One set of checks with two parameter sets: a lenient one for the door (people walk up, the
K-of-N policy absorbs a bad frame) and a strict one for enrollment (a bad template poisons
every later comparison). Each failed check is a reason string, so a rejection is explained.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_gate.vision.types import Quality

__layer__ = "core"


@dataclass(frozen=True, slots=True)
class QualityGate:
    min_face_px: float
    min_inter_eye_px: float
    min_sharpness: float
    max_abs_yaw_deg: float
    max_abs_pitch_deg: float
    max_abs_roll_deg: float
    min_brightness: float
    max_brightness: float
    min_contrast: float

    def failures(self, q: Quality) -> tuple[str, ...]:
        """Reasons this face fails the gate; empty when it passes."""
        out: list[str] = []
        if q.face_px < self.min_face_px:
            out.append(f"face too small ({q.face_px:.0f} px < {self.min_face_px:.0f})")
        if q.inter_eye_px < self.min_inter_eye_px:
            out.append(f"eyes too close ({q.inter_eye_px:.0f} px < {self.min_inter_eye_px:.0f})")
        if q.sharpness < self.min_sharpness:
            out.append(f"too blurry (sharpness {q.sharpness:.0f} < {self.min_sharpness:.0f})")
        if abs(q.yaw_deg) > self.max_abs_yaw_deg:
            out.append(f"head turned (yaw {q.yaw_deg:.0f}°)")
        if abs(q.pitch_deg) > self.max_abs_pitch_deg:
            out.append(f"head tilted up/down (pitch {q.pitch_deg:.0f}°)")
        if abs(q.roll_deg) > self.max_abs_roll_deg:
            out.append(f"head tilted sideways (roll {q.roll_deg:.0f}°)")
        if q.brightness < self.min_brightness:
            out.append(f"too dark (brightness {q.brightness:.0f})")
        if q.brightness > self.max_brightness:
            out.append(f"too bright (brightness {q.brightness:.0f})")
        if q.contrast < self.min_contrast:
            out.append(f"too little contrast ({q.contrast:.0f})")
        return tuple(out)

    def passes(self, q: Quality) -> bool:
        return not self.failures(q)


DOOR_GATE = QualityGate(
    min_face_px=60.0,
    min_inter_eye_px=20.0,
    min_sharpness=20.0,
    max_abs_yaw_deg=35.0,
    max_abs_pitch_deg=30.0,
    max_abs_roll_deg=30.0,
    min_brightness=40.0,
    max_brightness=220.0,
    min_contrast=15.0,
)
"""Lenient: a face walking up to the door; the K-of-N policy absorbs a bad frame."""
