"""Camera URLs: classify, refuse embedded credentials, add credentials, redact.

Credentials never live in the config file: the configured URL must not carry a user or a
password (:func:`parse_source` refuses it), and the authenticated URL is built in memory from
the credential files (:func:`with_credentials`). Anything that may reach a log line, an error,
an event or a process title goes through :func:`redact` first.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from edge_gate.errors import ConfigError

__layer__ = "core"

REDACTED = "***"

# scheme://userinfo@ — userinfo ends at the last "@" before the first "/" "?" "#" or blank
_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s]*)@")


class SourceKind(enum.Enum):
    """Which backend reads the camera."""

    RTSP = "rtsp"
    RTSPS = "rtsps"
    V4L2 = "v4l2"
    FILE = "file"


@dataclass(frozen=True)
class SourceLocation:
    """A validated camera location without credentials.

    ``target`` is the URL for network sources and the filesystem path for V4L2 and files.
    """

    kind: SourceKind
    target: str

    @property
    def is_network(self) -> bool:
        return self.kind in (SourceKind.RTSP, SourceKind.RTSPS)


def parse_source(url: str) -> SourceLocation:
    """Classify a configured camera location; refuse credentials inside it.

    Accepted: ``rtsp://host[:port]/path``, ``rtsps://…``, ``/dev/videoN`` or any absolute
    path under ``/dev`` (udev symlinks such as ``/dev/v4l/by-id/…``), ``v4l2:///dev/…``,
    ``file:///path`` and plain absolute paths of files.
    """
    text = url.strip()
    if not text:
        raise ConfigError("camera.url: empty")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in text):
        raise ConfigError("camera.url: contains white space or control characters")
    if text.startswith("/"):
        kind = SourceKind.V4L2 if text.startswith("/dev/") else SourceKind.FILE
        return SourceLocation(kind, text)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ConfigError(
            f"camera.url: {redact(text)} carries credentials; put the user name and password "
            "in camera.username_file / camera.password_file (systemd LoadCredential=)"
        )
    if scheme in ("rtsp", "rtsps"):
        if not parts.hostname:
            raise ConfigError(f"camera.url: {text} has no host")
        try:
            _ = parts.port
        except ValueError as e:
            raise ConfigError(f"camera.url: {text} has an invalid port") from e
        return SourceLocation(SourceKind(scheme), urlunsplit(parts._replace(scheme=scheme)))
    if scheme in ("file", "v4l2"):
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ConfigError(f"camera.url: {text} must name an absolute local path")
        kind = SourceKind.FILE if scheme == "file" else SourceKind.V4L2
        return SourceLocation(kind, path)
    raise ConfigError(
        f"camera.url: unsupported scheme {scheme or '(none)'!r}; use rtsp://, rtsps://, "
        "/dev/videoN or file://"
    )


def with_credentials(url: str, username: str, password: str) -> str:
    """Insert percent-encoded credentials into an rtsp(s) URL that has none."""
    parts = urlsplit(url)
    if parts.username is not None or "@" in parts.netloc:
        raise ConfigError(f"camera.url: {redact(url)} already carries credentials")
    userinfo = quote(username, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove credentials from any text: ``scheme://user:pass@`` → ``scheme://***@``.

    ``secrets`` (e.g. the password, raw and percent-encoded) are also blanked wherever they
    appear, for messages from backends that echo credentials outside a URL.
    """
    out = _USERINFO_RE.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    for secret in secrets:
        if len(secret) >= 3:  # blanking one or two characters would shred the message
            out = out.replace(secret, REDACTED)
    return out


def secret_forms(password: str) -> tuple[str, ...]:
    """The spellings of a password that could appear in a message (raw and percent-encoded)."""
    forms = {password, quote(password, safe=""), quote(password)}
    return tuple(sorted((f for f in forms if f), key=len, reverse=True))


def host_of(url: str) -> str:
    """The host name of a network URL (for TLS name checks); empty when there is none."""
    return urlsplit(url).hostname or ""


def port_of(url: str, default: int) -> int:
    """The port of a network URL or ``default``."""
    port = urlsplit(url).port
    return port if port is not None else default
