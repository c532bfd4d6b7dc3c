"""rtsps: the stream runs over a TLS connection that Python verified (chain *and* host name).

FFmpeg's OpenSSL layer, as bundled with OpenCV, checks a camera certificate's chain against
``ca_file`` but not its host name, so any certificate from the same CA would do for a
man-in-the-middle. A separate verified handshake before FFmpeg connects does not close that gap
(the second connection is not the checked one). Instead, edge-gate opens the one connection
itself with Python ``ssl`` (``CERT_REQUIRED`` + ``check_hostname``, the configured CA bundle and
``tls_server_name``) and relays it to FFmpeg, which speaks plain RTSP-over-TCP (media interleaved)
to a one-shot listener on 127.0.0.1. The listener serves exactly one connection, and only one
whose other end is a socket of this very process (FFmpeg runs in-process; checked through
``/proc/net/tcp`` and ``/proc/self/fd``): another local user who races to the port is hung up
on before a byte is relayed, so they can neither read the camera nor play the camera to
FFmpeg and collect its credentials. The relay ends when either side closes, when
:meth:`TlsRelay.close` is called, or on an I/O error.

Cost: one thread per rtsps camera copying a few Mbit/s; a camera that freezes shows up in FFmpeg
as a read timeout exactly as with a plain connection.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from edge_gate.capture.failure import CaptureFailure, CaptureOpenError
from edge_gate.capture.rtsp_check import TlsSettings, open_verified

log = logging.getLogger(__name__)

CHUNK_BYTES = 65536
POLL_S = 0.2  # how often the relay thread looks at its stop flag
RELAY_THREAD_NAME = "rtsps-relay"
IO_TIMEOUT_S = 5.0  # a TLS record that never completes, or FFmpeg that stops reading


def _loopback_hex(port: int) -> str:
    return f"0100007F:{port:04X}"  # 127.0.0.1 as /proc/net/tcp writes it (little-endian)


def peer_is_this_process(conn: socket.socket) -> bool:
    """True when the other end of an accepted 127.0.0.1 TCP connection is a socket held by this
    process: its /proc/net/tcp entry's inode must be one of /proc/self/fd's sockets."""
    peer_host, peer_port = conn.getpeername()[:2]
    if peer_host != "127.0.0.1":
        return False
    want = (_loopback_hex(int(peer_port)), _loopback_hex(int(conn.getsockname()[1])))
    inode = None
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table, None)  # header
        for line in table:
            fields = line.split()
            if len(fields) > 9 and (fields[1], fields[2]) == want:
                inode = fields[9]
                break
    if inode is None or inode == "0":
        return False
    target = f"socket:[{inode}]"
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


class TlsRelay:
    """One verified TLS connection to a camera, offered once as plain TCP on loopback."""

    def __init__(self, upstream: socket.socket, camera_url: str, accept_timeout_s: float) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=1)
        self._listener.settimeout(POLL_S)
        self._port = int(self._listener.getsockname()[1])
        self._camera_url = camera_url
        self._accept_deadline_s = time.monotonic() + accept_timeout_s
        self._stop = threading.Event()
        self.bytes_down = 0  # camera → FFmpeg
        self.bytes_up = 0  # FFmpeg → camera
        self.foreign_refused = 0  # connections from other processes, hung up on
        self._thread = threading.Thread(target=self._run, name=RELAY_THREAD_NAME, daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, url: str, tls: TlsSettings, timeout_s: float) -> TlsRelay:
        """Connect and verify; raise :class:`CaptureOpenError` (TLS_FAILED, TIMEOUT, …)."""
        sock, result = open_verified(url, timeout_s=timeout_s, tls=tls)
        if sock is None:
            raise CaptureOpenError(result.failure or CaptureFailure.OPEN_FAILED, result.detail)
        try:
            return cls(sock, url, accept_timeout_s=timeout_s)
        except BaseException:
            sock.close()
            raise

    @property
    def local_url(self) -> str:
        """The camera URL with scheme ``rtsp`` and the relay's loopback address (path kept)."""
        parts = urlsplit(self._camera_url)
        return urlunsplit(("rtsp", f"127.0.0.1:{self._port}", parts.path, parts.query, ""))

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop relaying; the relay thread closes both connections within a poll, or within
        ``IO_TIMEOUT_S`` when it is blocked sending to a peer that stopped reading (idempotent;
        waits at most ``timeout_s``)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            local = self._accept_one()
            if local is None:
                return
            with local:
                self._pump(local)
        except OSError as e:  # a reset, a TLS alert or a timeout: FFmpeg sees the end of stream
            log.debug("camera.tls_relay_ended", extra={"EG_REASON": type(e).__name__})
        finally:
            self._listener.close()
            self._upstream.close()

    def _accept_one(self) -> socket.socket | None:
        while not self._stop.is_set() and time.monotonic() < self._accept_deadline_s:
            try:
                local, _peer = self._listener.accept()
            except TimeoutError:
                continue
            try:
                ours = peer_is_this_process(local)
            except OSError:  # the peer reset already (a racer's trick to kill the listener)
                ours = False
            if not ours:
                log.warning("camera.tls_relay_foreign_peer")  # another local process raced us
                self.foreign_refused += 1
                local.close()
                continue
            self._listener.close()  # one connection only: nobody else on the box gets the stream
            local.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return local
        return None

    def _pump(self, local: socket.socket) -> None:
        up = self._upstream
        local.settimeout(IO_TIMEOUT_S)
        while not self._stop.is_set():
            # decrypted bytes already inside the SSL object do not make the socket readable
            pending = isinstance(up, ssl.SSLSocket) and up.pending() > 0
            ready = [up] if pending else select.select([local, up], [], [], POLL_S)[0]
            for sock in ready:
                if sock is up:
                    # non-blocking: a readable socket may hold only part of a record, or only
                    # TLS 1.3 session tickets, and must not stall the other direction
                    up.settimeout(0.0)
                    try:
                        data = up.recv(CHUNK_BYTES)
                    except ssl.SSLWantReadError:
                        continue
                    finally:
                        up.settimeout(IO_TIMEOUT_S)
                    if not data:
                        return
                    local.sendall(data)
                    self.bytes_down += len(data)
                else:
                    data = local.recv(CHUNK_BYTES)
                    if not data:
                        return
                    up.sendall(data)
                    self.bytes_up += len(data)
