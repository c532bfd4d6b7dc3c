"""``[camera]``: where frames come from."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from edge_gate.capture.url import parse_source, redact
from edge_gate.config.base import NonEmptyPath, Section
from edge_gate.errors import ConfigError

_URL_PREFIX = "camera.url: "


class CameraConfig(Section):
    url: str = Field(
        "file:///dev/null",
        description="rtsp://, rtsps://, /dev/videoN (or a udev symlink) or file:// URL; "
        "no credentials in it: they come from username_file/password_file",
    )
    username_file: NonEmptyPath | None = Field(
        None, description="file (or systemd credential) holding the camera user name"
    )
    password_file: NonEmptyPath | None = Field(
        None, description="file (or systemd credential) holding the camera password"
    )
    width: int = Field(
        640, ge=64, le=7680, description="processing width in px; frames are downscaled to fit"
    )
    height: int = Field(480, ge=48, le=4320, description="processing height in px")
    fps: float = Field(15.0, gt=0, le=120, description="expected camera frame rate")
    open_timeout_s: float = Field(
        5.0, gt=0, le=120, description="give up opening the stream after this"
    )
    stall_timeout_s: float = Field(
        3.0, gt=0, le=120, description="no frame for this long → reconnect"
    )
    ca_file: NonEmptyPath | None = Field(
        None,
        description="CA bundle (PEM) that must have signed the rtsps:// camera's certificate; "
        "default: the system store. A camera's self-signed certificate works as its own CA",
    )
    tls_server_name: str | None = Field(
        None,
        max_length=253,
        pattern=r"^[A-Za-z0-9.:\-]+$",
        description="name the rtsps:// certificate must carry (default: the URL's host)",
    )
    reconnect_initial_s: float = Field(
        0.25, gt=0, le=60, description="first reconnect delay; doubles per failure (with jitter)"
    )
    reconnect_max_s: float = Field(1.0, gt=0, le=300, description="cap on the reconnect delay")
    auth_retry_max_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="cap on the retry delay after auth/TLS failures (cameras lock accounts)",
    )
    realtime: bool = Field(
        True, description="file sources only: pace frames at the file's frame rate"
    )
    loop: bool = Field(False, description="file sources only: restart at the end")

    @field_validator("url")
    @classmethod
    def _url_accepted_by_the_daemon(cls, url: str) -> str:
        """The same check the daemon applies at start (no credentials, known scheme, host)."""
        try:
            parse_source(url)
        except (ConfigError, ValueError) as e:
            reason = redact(str(e)).removeprefix(_URL_PREFIX)  # the key path is added by the caller
            raise PydanticCustomError("camera_url", "{reason}", {"reason": reason}) from None
        return url
