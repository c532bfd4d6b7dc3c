"""One frame through the decision path: detect → gate → embed → track → liveness → match → policy.

With a second factor (:class:`~edge_gate.service.second_factor.SecondFactorStage`) the face
policy's outcome goes through the door mode, and while a card names a person
(``face_and_card``) the first usable face of each frame is also scored 1:1 against that
person's templates. :meth:`FrameProcessor.idle` runs the stage on a loop turn without a frame.

The processor owns no threads and no clocks: the pipeline thread calls :meth:`process` with a
frame and its monotonic timestamp. Its collaborators are passed in (protocols below), so the
whole decision path runs in tests with the real models or with fakes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, assert_never

import numpy as np
import numpy.typing as npt

from edge_gate.decision.factors import FaceCheck
from edge_gate.decision.policy import (
    Decision,
    DecisionPolicy,
    Deny,
    Grant,
    Observation,
    Outcome,
    Pending,
    PendingReason,
)
from edge_gate.gallery.gates import GateLimits, check_face
from edge_gate.service.second_factor import Credentials, FactorOutcome, SecondFactorStage
from edge_gate.vision.types import Detection, Face

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
Vector = npt.NDArray[np.float32]


class FaceAnalyzer(Protocol):
    def analyze(self, image_bgr: Image, embed: bool = True) -> list[Face]: ...

    def embed(self, image_bgr: Image, detection: Detection) -> Vector: ...


class TrackLike(Protocol):
    @property
    def track_id(self) -> int: ...

    @property
    def detection(self) -> Detection: ...

    @property
    def last_seen_s(self) -> float: ...


class FaceTracker(Protocol):
    def update(self, detections: list[Detection], now_s: float) -> Sequence[TrackLike]: ...


class LivenessVerdict(Protocol):
    @property
    def live(self) -> bool | None: ...

    @property
    def score(self) -> float: ...


class LivenessChecker(Protocol):
    def update(
        self, track_id: int, frame_bgr: Image, detection: Detection, now_s: float
    ) -> None: ...

    def verdict(self, track_id: int) -> LivenessVerdict: ...


class MatchLike(Protocol):
    @property
    def user_id(self) -> str | None: ...

    @property
    def best_user_id(self) -> str | None: ...

    @property
    def score(self) -> float: ...

    @property
    def margin(self) -> float: ...


class Matcher(Protocol):
    def match(self, embedding: Vector) -> MatchLike: ...

    def score_user(self, embedding: Vector, user_id: str) -> float: ...

    @property
    def credentials(self) -> Credentials: ...

    @property
    def card_tag_key(self) -> bytes: ...


@dataclass(frozen=True)
class FrameResult:
    """What one frame produced: decisions, and per-face details for snapshots and stats."""

    faces: int
    decisions: tuple[Outcome, ...]  # grants and denials; waiting tracks give none
    annotations: tuple[tuple[Face, int, str], ...]  # face, track id, short label
    factor_decisions: tuple[FactorOutcome, ...] = ()  # from the door mode (cards, PINs, 1:1)


class FrameProcessor:
    """Stateful per-door decision path; call from one thread only."""

    def __init__(
        self,
        analyzer: FaceAnalyzer,
        tracker: FaceTracker,
        liveness: LivenessChecker | None,
        matcher: Matcher,
        policy: DecisionPolicy,
        gate: GateLimits,
        max_faces: int,
        factors: SecondFactorStage | None = None,
    ) -> None:
        self._analyzer = analyzer
        self._tracker = tracker
        self._liveness = liveness
        self._matcher = matcher
        self._policy = policy
        self._gate = gate
        self._max_faces = max_faces
        self._factors = factors
        self._checked = False
        if factors is not None:
            factors.set_credentials(matcher.credentials, matcher.card_tag_key)

    def set_matcher(self, matcher: Matcher) -> None:
        """Swap the gallery (SIGHUP reload); open tracks are forgotten so no stale match counts,
        and the card/PIN directory is the reloaded one (an open card claim is dropped)."""
        self._matcher = matcher
        self._policy.reset()
        if self._factors is not None:
            self._factors.set_credentials(matcher.credentials, matcher.card_tag_key)

    def idle(self, now_s: float) -> tuple[FactorOutcome, ...]:
        """A loop turn without a frame: card reads, PINs and timeouts still get their answer."""
        return tuple(self._factors.step(now_s)) if self._factors is not None else ()

    def process(self, image_bgr: Image, now_s: float) -> FrameResult:
        factor_out = list(self.idle(now_s))
        self._checked = False  # one 1:1 check per frame, on the first usable face
        faces = self._analyzer.analyze(image_bgr, embed=False)[: self._max_faces]
        tracks = self._tracker.update([f.detection for f in faces], now_s)
        by_box = {_key(f.detection): f for f in faces}
        decisions: list[Outcome] = []
        notes: list[tuple[Face, int, str]] = []
        for track in tracks:
            if track.last_seen_s != now_s:
                continue  # a track kept alive across a gap, not seen in this frame
            face = by_box.get(_key(track.detection))
            if face is None:
                continue
            decision, label, checked = self._observe(image_bgr, face, track.track_id, now_s)
            notes.append((face, track.track_id, label))
            if checked is not None:
                factor_out.append(checked)
            match decision:
                case Grant() | Deny():
                    decisions.append(decision)
                case Pending():
                    pass
                case _:
                    assert_never(decision)
        return FrameResult(len(faces), tuple(decisions), tuple(notes), tuple(factor_out))

    def _observe(
        self, image_bgr: Image, face: Face, track_id: int, now_s: float
    ) -> tuple[Decision, str, FactorOutcome | None]:
        live: bool | None = True
        live_score = 1.0
        if self._liveness is not None:
            self._liveness.update(track_id, image_bgr, face.detection, now_s)
            verdict = self._liveness.verdict(track_id)
            live, live_score = verdict.live, verdict.score
        quality_ok = check_face(face, self._gate).ok
        user_id: str | None = None
        score = margin = -1.0
        checked: FactorOutcome | None = None
        claimed = self._factors.claimed_user if self._factors is not None else None
        if quality_ok:
            embedding = self._analyzer.embed(image_bgr, face.detection)
            result = self._matcher.match(embedding)
            user_id, score, margin = result.best_user_id, result.score, result.margin
            if self._factors is not None and claimed is not None and not self._checked:
                self._checked = True
                one = self._matcher.score_user(embedding, claimed)
                check = FaceCheck(track_id, claimed, one, live, live_score, now_s)
                checked = self._factors.on_face_check(check)
        obs = Observation(
            track_id=track_id,
            now_s=now_s,
            quality_ok=quality_ok,
            user_id=user_id,
            score=score,
            margin=margin,
            live=live,
            liveness_score=live_score,
        )
        label = f"#{track_id} q={'ok' if quality_ok else 'low'} s={score:.2f} live={live_score:.2f}"
        decision = self._policy.observe(obs)
        if self._factors is not None and isinstance(decision, Grant | Deny):
            if claimed is not None and isinstance(decision, Deny):
                decision = Pending(track_id, PendingReason.AWAITING_FACE)  # the 1:1 check decides
            else:
                decision = self._factors.on_face(decision, now_s)
        return decision, label, checked


def _key(d: Detection) -> tuple[float, float, float, float]:
    return (d.box.x1, d.box.y1, d.box.x2, d.box.y2)
