"""sd_notify without libsystemd: READY, WATCHDOG, STATUS and STOPPING over ``$NOTIFY_SOCKET``.

The protocol is one AF_UNIX datagram of newline-separated ``KEY=VALUE`` lines sent to the
socket named in ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace). When
the variable is unset (not started by systemd, or ``Type=`` is not ``notify``) every call is a
no-op, so the daemon runs the same way under a terminal, a test or systemd.

Sending never raises into the daemon: a failed datagram is logged and reported as ``False``.
A missed WATCHDOG ping is then handled by systemd the only safe way, by restarting us.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"
MAX_STATUS_CHARS = 200
_MAX_SOCKET_PATH_BYTES = 107  # sun_path is 108 bytes including the terminating NUL


def _socket_address(value: str) -> str | None:
    """Map ``$NOTIFY_SOCKET`` to an address ``socket.sendto`` accepts, or None if unusable."""
    if value.startswith("@"):
        name = "\0" + value[1:]
    elif value.startswith("/"):
        name = value
    else:
        return None  # vsock: and relative paths are not supported
    if len(value) < 2 or len(name.encode()) > _MAX_SOCKET_PATH_BYTES:
        return None
    return name


def _one_line(text: str) -> str:
    """STATUS must stay one line: control characters become spaces, length is bounded."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return cleaned[:MAX_STATUS_CHARS]


@dataclass
class Notifier:
    """Sends service state to systemd. ``address`` None means notifications are disabled."""

    address: str | None = None
    _sock: socket.socket | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """A notifier for ``$NOTIFY_SOCKET``; disabled (all no-ops) when it is unset or unusable."""
        env = os.environ if environ is None else environ
        value = env.get(NOTIFY_SOCKET_ENV, "")
        if not value:
            return cls(None)
        address = _socket_address(value)
        if address is None:
            log.warning("sd_notify.bad_socket", extra={"EG_NOTIFY_SOCKET": value[:120]})
        return cls(address)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str | None = None) -> bool:
        """Start-up finished: models verified, gallery decrypted, relay handshake done."""
        return self._send_fields({"READY": "1"}, status)

    def watchdog(self) -> bool:
        """Keep-alive; call only while the pipeline heartbeat is fresh."""
        return self._send_fields({"WATCHDOG": "1"}, None)

    def status(self, text: str) -> bool:
        """A one-line human status shown by ``systemctl status``."""
        return self._send_fields({}, text)

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun."""
        return self._send_fields({"STOPPING": "1"}, status)

    def reloading(self, status: str | None = None) -> bool:
        """A reload (SIGHUP: gallery) has begun; follow with :meth:`ready` when done."""
        return self._send_fields({"RELOADING": "1"}, status)

    def extend_timeout(self, timeout_s: float) -> bool:
        """Ask for ``timeout_s`` more before the start/stop timeout fires (slow gallery loads)."""
        usec = max(1, int(timeout_s * 1_000_000))
        return self._send_fields({"EXTEND_TIMEOUT_USEC": str(usec)}, None)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _send_fields(self, fields: Mapping[str, str], status: str | None) -> bool:
        if self.address is None:
            return False
        lines = [f"{k}={v}" for k, v in fields.items()]
        if status is not None:
            lines.append(f"STATUS={_one_line(status)}")
        return self._send("\n".join(lines) + "\n")

    def _send(self, message: str) -> bool:
        address = self.address
        if address is None:
            return False
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._sock.sendto(message.encode("utf-8"), address)
            except OSError as e:
                log.warning("sd_notify.send_failed", extra={"EG_ERRNO": e.errno})
                return False
        return True


def _parse_uint(text: str) -> int | None:
    """A plain ASCII decimal, as systemd writes it; anything else is None."""
    if not text.isascii() or not text.isdecimal():
        return None
    return int(text)


def watchdog_timeout_s(
    environ: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """systemd's watchdog timeout (``WatchdogSec=``) for this process, or None when not enabled.

    ``$WATCHDOG_PID``, when present, must name this process: the variables may have been
    inherited by a child that systemd does not watch.
    """
    env = os.environ if environ is None else environ
    usec_text = env.get(WATCHDOG_USEC_ENV, "")
    if not usec_text:
        return None
    pid_text = env.get(WATCHDOG_PID_ENV, "")
    if pid_text:
        own_pid = os.getpid() if pid is None else pid
        if _parse_uint(pid_text) != own_pid:
            return None
    usec = _parse_uint(usec_text)
    if usec is None or usec == 0:
        log.warning("sd_notify.bad_watchdog_usec", extra={"EG_WATCHDOG_USEC": usec_text[:32]})
        return None
    return usec / 1_000_000


def watchdog_interval_s(
    environ: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """How often to send WATCHDOG=1: half the timeout, as sd_watchdog_enabled(3) advises."""
    timeout_s = watchdog_timeout_s(environ, pid)
    return None if timeout_s is None else timeout_s / 2
