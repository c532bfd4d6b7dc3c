"""What the daemon needs from its parts, as Protocols (composition layer).

:mod:`edge_gate.service.compose` builds the real parts from the config; tests hand the daemon
other real parts (or a recording door) through the same types instead of patching attributes.
"""

from __future__ import annotations

from typing import Protocol

from edge_gate.audit.events import EventType
from edge_gate.capture.thread import CaptureStatus
from edge_gate.door.worker import UnlockCommand
from edge_gate.service.frame_processor import Matcher
from edge_gate.service.pipeline_thread import PipelineStats
from edge_gate.threads import Heartbeat

EventValue = float | int | str | None


class EventSink(Protocol):
    """The audit trail: signed, durable events."""

    def emit(
        self,
        event_type: EventType,
        *,
        door: str | None,
        subject: str | None = None,
        reason: str | None = None,
        **fields: EventValue,
    ) -> int | None: ...

    def flush(self, timeout_s: float) -> bool: ...

    def stop(self, timeout_s: float = 5.0) -> bool: ...


class Part(Protocol):
    """A long-running thread (see :class:`edge_gate.threads.ServiceThread`)."""

    def start(self) -> None: ...

    def stop(self, timeout_s: float = 5.0) -> bool: ...

    def join(self, timeout_s: float) -> bool: ...

    @property
    def alive(self) -> bool: ...


class DoorActuator(Part, Protocol):
    """What opens the door: the signed relay today (one unlock queued at most)."""

    def submit(self, cmd: UnlockCommand) -> bool: ...


class CameraFeed(Part, Protocol):
    def status(self) -> CaptureStatus: ...


class DecisionLoop(Part, Protocol):
    """The pipeline thread: frames in, decisions out, a heartbeat per loop turn."""

    heartbeat: Heartbeat
    stats: PipelineStats

    def replace_matcher(self, matcher: Matcher) -> None: ...


class GallerySource(Protocol):
    """Where the door's matcher comes from, and how to tell that it changed on disk."""

    def load(self) -> Matcher: ...

    def nobody(self) -> Matcher: ...

    def stamp(self) -> object: ...
