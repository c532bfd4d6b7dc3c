"""RTSP pre-flight: one authenticated DESCRIBE to say *why* a camera cannot be opened.

OpenCV's FFmpeg backend reports every failure as "could not open"; the installer needs to know
whether it is the password, the path, the network or the certificate. Before the backend
connects, this module sends one ``DESCRIBE`` (Basic or Digest authentication, as the camera
asks) and maps the outcome to a :class:`CaptureFailure`.

The DESCRIBE runs only after the backend failed (some servers, GStreamer's among them, answer
503 to a DESCRIBE that races the teardown of a previous one). For ``rtsps://``,
``open_verified`` makes the connection the stream itself runs over (see ``tls_relay``): chain
and host name verified by Python ``ssl`` against the configured CA bundle.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_gate.capture.failure import CaptureFailure, failure_from_rtsp_status
from edge_gate.capture.url import host_of, port_of

MAX_RESPONSE_BYTES = 65536
USER_AGENT = "edge-gate"
_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]*))')


@dataclass(frozen=True)
class TlsSettings:
    """How to verify an rtsps camera: CA bundle (``None``: system store) and expected name."""

    ca_file: Path | None = None
    server_name: str | None = None


@dataclass(frozen=True)
class CheckResult:
    """Outcome of the pre-flight: ``failure`` is ``None`` when DESCRIBE succeeded."""

    failure: CaptureFailure | None
    detail: str = ""


class _ProtocolError(Exception):
    """The peer answered, but not like an RTSP server."""


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _auth_params(header: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _PARAM_RE.finditer(header)}


def authorization(
    challenges: list[str], method: str, uri: str, username: str, password: str
) -> str | None:
    """The ``Authorization`` value answering the server's ``WWW-Authenticate`` challenges.

    Digest (MD5, ``qop=auth`` when offered) is preferred over Basic; ``None`` when the server
    offers neither.
    """
    digest = next((c for c in challenges if c.strip().lower().startswith("digest")), None)
    if digest is not None:
        p = _auth_params(digest[len("digest") :])
        realm, nonce = p.get("realm", ""), p.get("nonce", "")
        ha1 = _md5(f"{username}:{realm}:{password}")
        ha2 = _md5(f"{method}:{uri}")
        fields = [
            f'username="{username}"',
            f'realm="{realm}"',
            f'nonce="{nonce}"',
            f'uri="{uri}"',
        ]
        if "auth" in [q.strip() for q in p.get("qop", "").split(",")]:
            cnonce, nc = secrets.token_hex(8), "00000001"
            response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        fields.append(f'response="{response}"')
        if "opaque" in p:
            fields.append(f'opaque="{p["opaque"]}"')
        return "Digest " + ", ".join(fields)
    if any(c.strip().lower().startswith("basic") for c in challenges):
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return f"Basic {token}"
    return None


def _read_response(sock: socket.socket) -> tuple[int, list[tuple[str, str]]]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise _ProtocolError("the peer closed the connection without an RTSP answer")
        buf += chunk
        if len(buf) > MAX_RESPONSE_BYTES:
            raise _ProtocolError("RTSP response header too large")
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    status_parts = lines[0].split(" ", 2)
    if len(status_parts) < 2 or not status_parts[0].startswith("RTSP/"):
        raise _ProtocolError("the peer is not an RTSP server")
    status = int(status_parts[1]) if status_parts[1].isdigit() else 0
    headers = [
        (k.strip().lower(), v.strip())
        for k, sep, v in (ln.partition(":") for ln in lines[1:])
        if sep
    ]
    length = next((int(v) for k, v in headers if k == "content-length" and v.isdigit()), 0)
    remaining = min(length, MAX_RESPONSE_BYTES) - len(body)
    while remaining > 0:
        chunk = sock.recv(min(remaining, 4096))
        if not chunk:
            break
        remaining -= len(chunk)
    return status, headers


def _describe(sock: socket.socket, url: str, cseq: int, auth: str | None) -> tuple[int, list[str]]:
    lines = [
        f"DESCRIBE {url} RTSP/1.0",
        f"CSeq: {cseq}",
        "Accept: application/sdp",
        f"User-Agent: {USER_AGENT}",
    ]
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
    status, headers = _read_response(sock)
    return status, [v for k, v in headers if k == "www-authenticate"]


def _connect(url: str, timeout_s: float, tls: TlsSettings | None) -> socket.socket:
    secure = url.lower().startswith("rtsps://")
    raw = socket.create_connection((host_of(url), port_of(url, 322 if secure else 554)), timeout_s)
    if not secure:
        return raw
    settings = tls or TlsSettings()
    ctx = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        return ctx.wrap_socket(raw, server_hostname=settings.server_name or host_of(url))
    except BaseException:
        raw.close()
        raise


def open_verified(
    url: str, *, timeout_s: float, tls: TlsSettings | None = None
) -> tuple[socket.socket | None, CheckResult]:
    """Connect and complete a verified TLS handshake (chain and host name); nothing is sent.

    Returns the open connection, or ``None`` and the classified failure."""
    opened: list[socket.socket] = []

    def run() -> CheckResult:
        opened.append(_connect(url, timeout_s, tls))
        return CheckResult(None)

    result = _guarded(run, timeout_s)
    return (opened[0] if opened else None), result


def check_rtsp(
    url: str,
    username: str | None,
    password: str | None,
    *,
    timeout_s: float,
    tls: TlsSettings | None = None,
) -> CheckResult:
    """Connect, DESCRIBE (answering one auth challenge) and classify; never raises on I/O."""

    def run() -> CheckResult:
        with _connect(url, timeout_s, tls) as sock:
            sock.settimeout(timeout_s)
            status, challenges = _describe(sock, url, 1, None)
            if status == 401 and username is not None:
                auth = authorization(challenges, "DESCRIBE", url, username, password or "")
                if auth is None:
                    return CheckResult(CaptureFailure.AUTH_FAILED, "no supported auth scheme")
                status, _ = _describe(sock, url, 2, auth)
        failure = failure_from_rtsp_status(status)
        return CheckResult(failure, f"RTSP {status}" if failure else "")

    return _guarded(run, timeout_s)


def _guarded(run: Callable[[], CheckResult], timeout_s: float) -> CheckResult:
    try:
        return run()
    except ssl.SSLCertVerificationError as e:
        return CheckResult(CaptureFailure.TLS_FAILED, e.verify_message or "certificate rejected")
    except ssl.SSLError as e:
        return CheckResult(CaptureFailure.TLS_FAILED, e.reason or "TLS handshake failed")
    except _ProtocolError as e:
        return CheckResult(CaptureFailure.OPEN_FAILED, str(e))
    except TimeoutError:
        return CheckResult(CaptureFailure.TIMEOUT, f"no answer within {timeout_s:g} s")
    except (ConnectionRefusedError, socket.gaierror) as e:
        return CheckResult(CaptureFailure.UNREACHABLE, e.strerror or type(e).__name__)
    except OSError as e:
        return CheckResult(CaptureFailure.UNREACHABLE, e.strerror or str(e))
