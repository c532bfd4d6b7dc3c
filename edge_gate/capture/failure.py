"""Why a camera could not be opened or read, as values an installer can act on."""

from __future__ import annotations

import enum

from edge_gate.errors import CaptureError

__layer__ = "core"


class CaptureFailure(enum.Enum):
    """The reason a source failed; ``value`` is the short text ``camera probe`` prints."""

    AUTH_FAILED = "auth failed"
    TIMEOUT = "timeout"
    UNREACHABLE = "connection refused or host unreachable"
    NOT_FOUND = "stream not found"
    TLS_FAILED = "TLS certificate verification failed"
    NO_SUCH_DEVICE = "no such device"
    PERMISSION_DENIED = "permission denied"
    NOT_A_VIDEO_DEVICE = "not a video device"
    NO_SUCH_FILE = "no such file"
    STREAM_ENDED = "stream ended"
    STALLED = "no frame within the stall timeout"
    OPEN_FAILED = "the backend could not open the stream"
    CREDENTIALS = "credential files unreadable"


# failures after which retrying quickly does not help and may lock the camera account
SLOW_RETRY = frozenset(
    {
        CaptureFailure.AUTH_FAILED,
        CaptureFailure.TLS_FAILED,
        CaptureFailure.CREDENTIALS,
        CaptureFailure.NOT_FOUND,
        CaptureFailure.NOT_A_VIDEO_DEVICE,
        CaptureFailure.PERMISSION_DENIED,
    }
)


class CaptureOpenError(CaptureError):
    """A source could not be opened or read; ``failure`` says why, the message is redacted."""

    def __init__(self, failure: CaptureFailure, detail: str = "") -> None:
        self.failure = failure
        self.detail = detail
        super().__init__(f"{failure.value}: {detail}" if detail else failure.value)


def failure_from_rtsp_status(status: int) -> CaptureFailure | None:
    """Map an RTSP response status to a failure; ``None`` when the request succeeded."""
    if 200 <= status < 300:
        return None
    if status in (401, 403, 407):
        return CaptureFailure.AUTH_FAILED
    if status in (404, 454):  # 454: Session Not Found
        return CaptureFailure.NOT_FOUND
    return CaptureFailure.OPEN_FAILED
