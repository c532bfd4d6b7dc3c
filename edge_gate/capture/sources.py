"""Camera sources: RTSP/RTSPS (OpenCV's FFmpeg backend), V4L2 devices and video files.

``open_source(spec)`` returns a :class:`Source` whose ``read()`` gives the next BGR picture,
already downscaled to the processing size, or ``None`` when the stream ended or failed (the
capture thread then reconnects). Opening raises :class:`CaptureOpenError` with a
:class:`CaptureFailure` saying why. Credentials come from files (``camera.username`` /
``camera.password`` systemd credentials or the configured paths), never from the URL, and the
only URL any message carries is the redacted one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_gate.capture.failure import CaptureFailure, CaptureOpenError
from edge_gate.capture.frame import Frame, fit_within
from edge_gate.capture.rtsp_check import CheckResult, TlsSettings, check_rtsp
from edge_gate.capture.tls_relay import TlsRelay
from edge_gate.capture.url import (
    SourceKind,
    SourceLocation,
    parse_source,
    redact,
    secret_forms,
    with_credentials,
)
from edge_gate.capture.v4l2 import check_v4l2_device
from edge_gate.config.camera import CameraConfig
from edge_gate.errors import ConfigError, SecretFileError
from edge_gate.fsutil import read_secret

__all__ = [
    "Credentials",
    "Frame",
    "Source",
    "SourceSpec",
    "load_credentials",
    "open_source",
]

FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
# TCP interleaved transport (no UDP ports through NAT/firewalls, no lost packets = no smeared
# key frames); a short stream analysis (H.264 parameters come in the SDP) so that opening takes
# ~0.1 s instead of ~1.9 s; the first picture then waits only for the camera's next key frame.
_FFMPEG_BASE_OPTIONS = "rtsp_transport;tcp|analyzeduration;100000|probesize;32768|fflags;nobuffer"

# OpenCV's FFmpeg reader restarts its read timeout for each of its internal retries: a frozen
# stream makes read() return after 2-3 timeouts (OpenCV 4.14, FFmpeg 8, measured). Each
# timeout is half the stall timeout, so a stall is noticed after 1-1.5 x stall_timeout_s,
# while the first read after connecting may still wait a whole key-frame interval.
_OPENCV_READ_ATTEMPTS = 2

Image = NDArray[np.uint8]
Waiter = Callable[[float], bool]  # wait(seconds) -> True when asked to stop (threading.Event.wait)


@dataclass(frozen=True, repr=False)
class Credentials:
    """Camera user name and password; ``repr`` never shows the password."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username=<{len(self.username)} chars>, password=<hidden>)"


@dataclass(frozen=True)
class SourceSpec:
    """Everything needed to open a camera, resolved from ``[camera]`` and the credential files."""

    location: SourceLocation
    credentials: Credentials | None = None
    width: int = 640
    height: int = 480
    open_timeout_s: float = 5.0
    read_timeout_s: float = 3.0
    tls: TlsSettings = field(default_factory=TlsSettings)
    realtime: bool = True
    loop: bool = False
    fps: float = 15.0

    @classmethod
    def from_config(cls, cfg: CameraConfig, credentials: Credentials | None = None) -> SourceSpec:
        """Validate the URL and read the credential files (unless ``credentials`` is given)."""
        location = parse_source(cfg.url)
        if credentials is None and location.is_network:
            credentials = load_credentials(cfg.username_file, cfg.password_file)
        return cls(
            location=location,
            credentials=credentials,
            width=cfg.width,
            height=cfg.height,
            open_timeout_s=cfg.open_timeout_s,
            read_timeout_s=cfg.stall_timeout_s,
            tls=TlsSettings(cfg.ca_file, cfg.tls_server_name),
            realtime=cfg.realtime,
            loop=cfg.loop,
            fps=cfg.fps,
        )

    @property
    def redacted_url(self) -> str:
        return redact(self.location.target, self.secrets())

    def secrets(self) -> tuple[str, ...]:
        return secret_forms(self.credentials.password) if self.credentials else ()


def _credential_text(name: str, configured: Path | None) -> str | None:
    """A camera credential, read only when the config names its file (systemd's copy of the
    credential wins when present): an anonymous camera keeps working under the unit, which
    always passes (possibly empty) camera.* credentials."""
    if configured is None:
        return None
    try:
        raw = read_secret(name, configured, max_bytes=1024)
    except SecretFileError as e:
        raise CaptureOpenError(CaptureFailure.CREDENTIALS, str(e)) from e
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise CaptureOpenError(CaptureFailure.CREDENTIALS, f"{name} is not UTF-8") from e


def load_credentials(username_file: Path | None, password_file: Path | None) -> Credentials | None:
    """Read ``camera.username`` / ``camera.password`` (systemd credential or configured file).

    ``None`` when neither is configured (anonymous camera). A password without a user name is
    a config error.
    """
    username = _credential_text("camera.username", username_file)
    password = _credential_text("camera.password", password_file)
    if username is None:
        if password is not None:
            raise ConfigError("camera: a password file is configured but no username_file")
        return None
    return Credentials(username, password or "")


class Source(Protocol):
    """An open camera. One thread reads it; ``close`` may be called once afterwards."""

    description: str  # redacted, safe for logs
    finite: bool  # True for a file that ends (no loop)
    native_size: tuple[int, int]  # width, height as decoded

    def read(self) -> Image | None: ...

    def close(self) -> None: ...


class _CvSource:
    """Common part: one ``cv2.VideoCapture`` plus the downscale."""

    finite = False

    def __init__(self, cap: cv2.VideoCapture, description: str, max_size: tuple[int, int]):
        self._cap = cap
        self.description = description
        self._max_w, self._max_h = max_size
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.native_size = (w, h)

    def _grab(self) -> Image | None:
        ok, image = self._cap.read()
        if not ok or image is None or image.size == 0:
            return None
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        h, w = image.shape[:2]
        self.native_size = (w, h)
        tw, th = fit_within(w, h, self._max_w, self._max_h)
        if (tw, th) != (w, h):
            image = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(image, dtype=np.uint8)

    def read(self) -> Image | None:
        return self._grab()

    def close(self) -> None:
        self._cap.release()


class RtspSource(_CvSource):
    """rtsp:// or rtsps:// through OpenCV's FFmpeg backend, TCP transport, bounded timeouts."""

    # OpenCV reads FFmpeg options from one process-wide environment variable at open time;
    # the lock keeps two sources opening at once from seeing each other's options.
    _env_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def open(cls, spec: SourceSpec) -> RtspSource:
        url = spec.location.target
        creds = spec.credentials
        where = spec.redacted_url
        relay: TlsRelay | None = None
        ffmpeg_url = url
        if spec.location.kind is SourceKind.RTSPS:
            # FFmpeg would not check the host name: it gets a loopback relay of our verified TLS
            relay = TlsRelay.open(url, spec.tls, spec.open_timeout_s)
            ffmpeg_url = relay.local_url
        try:
            cap = cls._open_ffmpeg(spec, ffmpeg_url)
        except BaseException:
            if relay is not None:
                relay.close()
            raise
        if not cap.isOpened():
            cap.release()
            if relay is not None:
                relay.close()
            # FFmpeg says only "failed": ask the camera ourselves to tell the installer why
            check = check_rtsp(
                url,
                creds.username if creds else None,
                creds.password if creds else None,
                timeout_s=spec.open_timeout_s,
                tls=spec.tls,
            )
            _raise_if_failed(check, spec)
            raise CaptureOpenError(
                CaptureFailure.OPEN_FAILED, f"{where}: FFmpeg could not open the stream"
            )
        source = cls(cap, where, (spec.width, spec.height))
        source._relay = relay
        # OpenCV cannot change the read timeout after open, and the first picture waits for
        # the camera's next key frame (often 1-4 s): give it the open budget as well
        source._first_frame_deadline_s = time.monotonic() + spec.open_timeout_s
        return source

    @classmethod
    def _open_ffmpeg(cls, spec: SourceSpec, url: str) -> cv2.VideoCapture:
        creds = spec.credentials
        full_url = with_credentials(url, creds.username, creds.password) if creds else url
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(spec.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            max(100, int(spec.read_timeout_s * 1000 / _OPENCV_READ_ATTEMPTS)),
        ]
        with cls._env_lock:
            previous = os.environ.get(FFMPEG_OPTIONS_ENV)
            os.environ[FFMPEG_OPTIONS_ENV] = _FFMPEG_BASE_OPTIONS
            try:
                return cv2.VideoCapture(full_url, cv2.CAP_FFMPEG, params)
            finally:
                if previous is None:
                    os.environ.pop(FFMPEG_OPTIONS_ENV, None)
                else:
                    os.environ[FFMPEG_OPTIONS_ENV] = previous
                del full_url

    _relay: TlsRelay | None = None
    _first_frame_deadline_s: float | None = None

    def read(self) -> Image | None:
        image = self._grab()
        while image is None and self._first_frame_deadline_s is not None:
            if time.monotonic() >= self._first_frame_deadline_s:
                break
            image = self._grab()
        self._first_frame_deadline_s = None
        return image

    def close(self) -> None:
        super().close()
        if self._relay is not None:
            self._relay.close()


def _raise_if_failed(check: CheckResult, spec: SourceSpec) -> None:
    if check.failure is not None:
        detail = redact(f"{spec.redacted_url}: {check.detail}", spec.secrets())
        raise CaptureOpenError(check.failure, detail)


class V4l2Source(_CvSource):
    """A V4L2 capture node (``/dev/videoN`` or a udev symlink), checked before opening."""

    @classmethod
    def open(cls, spec: SourceSpec) -> V4l2Source:
        path = spec.location.target
        card = check_v4l2_device(path)
        cap = cv2.VideoCapture(path, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise CaptureOpenError(CaptureFailure.OPEN_FAILED, f"{path}: V4L2 open failed")
        # ask for the processing size so the camera does not send more than is used
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, spec.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, spec.height)
        cap.set(cv2.CAP_PROP_FPS, spec.fps)
        cap.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(spec.read_timeout_s * 1000))
        return cls(cap, f"{path} ({card})", (spec.width, spec.height))


class FileSource(_CvSource):
    """A video file; optional real-time pacing (at the file's frame rate) and looping."""

    def __init__(
        self,
        cap: cv2.VideoCapture,
        description: str,
        max_size: tuple[int, int],
        *,
        realtime: bool,
        loop: bool,
        wait: Waiter | None,
    ) -> None:
        super().__init__(cap, description, max_size)
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        self.file_fps = fps if 0 < fps < 1000 else 25.0
        self.finite = not loop
        self._realtime = realtime
        self._loop = loop
        self._wait = wait
        self._t0_s = time.monotonic()
        self._n = 0

    @classmethod
    def open(cls, spec: SourceSpec, wait: Waiter | None = None) -> FileSource:
        path = spec.location.target
        try:
            with open(path, "rb") as fh:
                fh.read(1)
        except FileNotFoundError as e:
            raise CaptureOpenError(CaptureFailure.NO_SUCH_FILE, path) from e
        except PermissionError as e:
            raise CaptureOpenError(CaptureFailure.PERMISSION_DENIED, path) from e
        except IsADirectoryError as e:
            raise CaptureOpenError(CaptureFailure.NO_SUCH_FILE, f"{path} is a directory") from e
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise CaptureOpenError(CaptureFailure.OPEN_FAILED, f"{path}: not a readable video")
        return cls(
            cap,
            path,
            (spec.width, spec.height),
            realtime=spec.realtime,
            loop=spec.loop,
            wait=wait,
        )

    def read(self) -> Image | None:
        if self._realtime:
            delay_s = self._t0_s + self._n / self.file_fps - time.monotonic()
            if delay_s > 0:
                if self._wait is None:
                    time.sleep(delay_s)
                elif self._wait(delay_s):
                    return None
        image = self._grab()
        if image is None and self._loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._t0_s, self._n = time.monotonic(), 0
            image = self._grab()
        if image is not None:
            self._n += 1
        return image


def open_source(spec: SourceSpec, wait: Waiter | None = None) -> Source:
    """Open the configured camera or raise :class:`CaptureOpenError` (message redacted).

    ``wait`` paces file sources; pass ``stop_event.wait`` so pacing ends at shutdown.
    """
    kind = spec.location.kind
    if kind in (SourceKind.RTSP, SourceKind.RTSPS):
        return RtspSource.open(spec)
    if kind is SourceKind.V4L2:
        return V4l2Source.open(spec)
    return FileSource.open(spec, wait)


def make_frame(image: Image, seq: int) -> Frame:
    """Stamp a decoded picture with the monotonic clock."""
    return Frame(image=image, t_mono_s=time.monotonic(), seq=seq)
