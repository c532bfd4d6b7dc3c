"""rtsps against a real GStreamer RTSP server over TLS: the stream runs over the one connection
whose chain and host name Python verified (the loopback relay in ``capture.tls_relay``)."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_gate.capture.failure import CaptureFailure, CaptureOpenError
from edge_gate.capture.rtsp_check import TlsSettings
from edge_gate.capture.sources import Credentials, RtspSource, SourceSpec, open_source
from edge_gate.capture.tls_relay import TlsRelay
from edge_gate.config.camera import CameraConfig
from edge_gate_dev.pki import new_ca, new_leaf, write_cert, write_key
from tests.rtsp_server import RtspTestServer, make_ca

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def tls_server(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspTestServer]:
    with RtspTestServer(clip, tmp_path_factory.mktemp("rtsps"), tls=True) as srv:
        yield srv


def _spec(srv: RtspTestServer, url: str | None = None, **kw: object) -> SourceSpec:
    cfg = CameraConfig.model_validate(
        {"url": url or srv.url, "open_timeout_s": 5.0, "ca_file": srv.ca_file, **kw}
    )
    return SourceSpec.from_config(cfg, creds_of(srv))


def creds_of(srv: RtspTestServer) -> Credentials:
    return Credentials(srv.username, srv.password)


class SwitchingProxy:
    """A TCP man in the middle: the first connection goes to ``first``, every later one to
    ``later`` (a pre-flight check on one connection proves nothing about the next)."""

    def __init__(self, first: int, later: int) -> None:
        self._targets = (first, later)
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            port = self._targets[0] if self.connections == 0 else self._targets[1]
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._copy, args=(a, b), daemon=True).start()

    @staticmethod
    def _copy(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                s.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._listener.close()


def test_rtsps_with_the_right_ca_gives_frames_through_the_verified_relay(
    tls_server: RtspTestServer,
) -> None:
    """rtsps:// with camera.ca_file = the CA that signed the camera certificate → frames, and
    they arrived through the relay's own verified TLS connection."""
    source = open_source(_spec(tls_server))
    try:
        assert isinstance(source, RtspSource)
        for _ in range(3):
            assert source.read() is not None
        relay = source._relay
        assert relay is not None
        assert relay.local_url.startswith("rtsp://127.0.0.1:")
        assert relay.local_url.endswith(tls_server.mount)
        assert relay.bytes_down > 10_000  # SDP and video came through the relay
        assert relay.bytes_up > 0  # FFmpeg's DESCRIBE/SETUP/PLAY went through it
    finally:
        source.close()
    assert not relay.running


def test_rtsps_with_an_unrelated_ca_is_refused(tls_server: RtspTestServer, tmp_path: Path) -> None:
    """rtsps:// against a CA that did not sign the camera certificate → TLS failure, no frames."""
    other_ca, _ = make_ca(tmp_path, "other CA")
    with pytest.raises(CaptureOpenError) as info:
        open_source(_spec(tls_server, ca_file=other_ca))
    assert info.value.failure is CaptureFailure.TLS_FAILED


def test_rtsps_host_name_mismatch_is_refused(tls_server: RtspTestServer) -> None:
    """The right CA but a certificate for another name (tls_server_name) → TLS failure."""
    spec = _spec(tls_server, tls_server_name="other-camera.example")
    assert spec.tls == TlsSettings(tls_server.ca_file, "other-camera.example")
    with pytest.raises(CaptureOpenError) as info:
        open_source(spec)
    assert info.value.failure is CaptureFailure.TLS_FAILED
    assert "other-camera.example" in str(info.value) or "hostname" in str(info.value).lower()


def _ffmpeg_opens(url: str, creds: Credentials, ca_file: Path) -> bool:
    """Open with OpenCV/FFmpeg's own TLS (chain check against ca_file), no edge-gate in between."""
    import cv2

    from edge_gate.capture import sources
    from edge_gate.capture.url import with_credentials

    options = f"rtsp_transport;tcp|tls_verify;1|ca_file;{ca_file}"
    full = with_credentials(url, creds.username, creds.password)
    with sources.RtspSource._env_lock:
        os.environ[sources.FFMPEG_OPTIONS_ENV] = options
        try:
            cap = cv2.VideoCapture(full, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000])
        finally:
            os.environ.pop(sources.FFMPEG_OPTIONS_ENV, None)
    try:
        return bool(cap.isOpened())
    finally:
        cap.release()


def test_a_certificate_for_another_name_from_the_same_ca_is_refused(
    clip: Path, tls_server: RtspTestServer, tmp_path: Path
) -> None:
    """Why the relay exists: FFmpeg's own TLS (tls_verify=1 + ca_file) refuses another CA but
    accepts a certificate of the right CA issued for another host name; edge-gate refuses it."""
    assert tls_server.ca_file is not None
    creds = creds_of(tls_server)
    assert _ffmpeg_opens(tls_server.url, creds, tls_server.ca_file)
    assert not _ffmpeg_opens(tls_server.url, creds, make_ca(tmp_path, "unrelated CA")[0])
    with RtspTestServer(
        clip, tmp_path / "wrong-name", tls=True, cert_names=("elsewhere.example",)
    ) as srv:
        assert srv.ca_file is not None
        assert _ffmpeg_opens(srv.url, creds_of(srv), srv.ca_file)  # FFmpeg: no host name check
        with pytest.raises(CaptureOpenError) as info:
            open_source(_spec(srv))
        assert info.value.failure is CaptureFailure.TLS_FAILED


def test_a_man_in_the_middle_after_the_check_gets_nothing(clip: Path, tmp_path: Path) -> None:
    """The attacker lets the first connection through to the real camera and sends the next to
    its own server, whose certificate comes from the same CA for another name. edge-gate makes
    one connection only: the stream comes from the real camera, the impostor is never reached."""
    ca = make_ca(tmp_path, "site CA")
    with (
        RtspTestServer(clip, tmp_path / "real", tls=True, ca=ca) as real,
        RtspTestServer(
            clip,
            tmp_path / "fake",
            tls=True,
            ca=ca,
            cert_names=("elsewhere.example",),
            password=real.password,
        ) as fake,
    ):
        proxy = SwitchingProxy(first=real.port, later=fake.port)
        try:
            url = f"rtsps://127.0.0.1:{proxy.port}{real.mount}"
            source = open_source(_spec(real, url=url))
            try:
                for _ in range(5):
                    assert source.read() is not None
            finally:
                source.close()
            assert proxy.connections == 1
            # and the impostor on its own is refused for its name
            with pytest.raises(CaptureOpenError) as info:
                open_source(_spec(real, url=url))
            assert info.value.failure is CaptureFailure.TLS_FAILED
            assert proxy.connections == 2
        finally:
            proxy.close()


def test_relay_takes_one_connection_and_stops_promptly(tls_server: RtspTestServer) -> None:
    """Nobody else on the box can attach to an open relay; close() ends it within a poll."""
    relay = TlsRelay.open(tls_server.url, TlsSettings(tls_server.ca_file), timeout_s=5.0)
    port = int(relay.local_url.split(":")[2].split("/")[0])
    first = socket.create_connection(("127.0.0.1", port), timeout=2.0)
    try:
        deadline = time.monotonic() + 2.0
        refused = False
        while not refused and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                time.sleep(0.05)  # the listener may not have closed yet
            except (ConnectionResetError, TimeoutError):
                # our SYN was queued while the listener closed (the kernel resets it), or dropped
                # because the listener's queue was full: the next attempt finds no listener
                time.sleep(0.05)
            except ConnectionRefusedError:
                refused = True
        assert refused
        assert relay.running
        t0 = time.monotonic()
        relay.close()
        assert not relay.running
        assert time.monotonic() - t0 < 1.0
    finally:
        first.close()


def test_relay_nobody_connects_ends_after_the_open_timeout(tls_server: RtspTestServer) -> None:
    """A relay whose FFmpeg never connects does not linger: it ends after the open budget."""
    relay = TlsRelay.open(tls_server.url, TlsSettings(tls_server.ca_file), timeout_s=0.5)
    deadline = time.monotonic() + 3.0
    while relay.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not relay.running


RACER = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(b"OPTIONS rtsp://127.0.0.1/cam RTSP/1.0\\r\\nCSeq: 1\\r\\n\\r\\n")
try:
    data = s.recv(65536)
except OSError:
    data = b""
print(len(data))
"""


def test_another_local_process_cannot_take_the_relay(tls_server: RtspTestServer) -> None:
    """A process that is not this one connects to the relay first: it is hung up on without a
    byte from the camera, the relay keeps listening, and this process's connection then gets
    the camera's answer."""
    relay = TlsRelay.open(tls_server.url, TlsSettings(tls_server.ca_file), timeout_s=5.0)
    port = relay.local_url.split(":")[2].split("/")[0]
    try:
        racer = subprocess.run(
            [sys.executable, "-c", RACER, port], capture_output=True, text=True, timeout=10
        )
        assert racer.returncode == 0, racer.stderr
        assert racer.stdout.strip() == "0"  # not one byte relayed to the other process
        assert relay.foreign_refused == 1
        assert relay.bytes_up == 0
        with socket.create_connection(("127.0.0.1", int(port)), timeout=3) as mine:
            mine.sendall(b"OPTIONS " + tls_server.url.encode() + b" RTSP/1.0\r\nCSeq: 1\r\n\r\n")
            answer = mine.recv(65536)
        assert answer.startswith(b"RTSP/1.0 ")  # the real camera answered through the relay
    finally:
        relay.close()


RESETTER = """
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()  # RST at once: the relay's peer check then finds no peer
"""


def test_a_racer_that_resets_at_once_does_not_kill_the_relay(tls_server: RtspTestServer) -> None:
    """Connect-and-reset from another process: hung up on like any racer; the relay keeps
    listening and this process's connection still reaches the camera."""
    relay = TlsRelay.open(tls_server.url, TlsSettings(tls_server.ca_file), timeout_s=5.0)
    port = relay.local_url.split(":")[2].split("/")[0]
    try:
        for _ in range(3):
            subprocess.run([sys.executable, "-c", RESETTER, port], check=True, timeout=10)
        time.sleep(0.3)
        assert relay.running
        with socket.create_connection(("127.0.0.1", int(port)), timeout=3) as mine:
            mine.sendall(b"OPTIONS " + tls_server.url.encode() + b" RTSP/1.0\r\nCSeq: 1\r\n\r\n")
            assert mine.recv(65536).startswith(b"RTSP/1.0 ")
    finally:
        relay.close()


class TicketingEchoServer:
    """A TLS 1.3 echo server (Python ssl, which sends session tickets after the handshake)."""

    def __init__(self, workdir: Path) -> None:
        ca = new_ca("echo CA")
        self.ca_file = workdir / "echo-ca.pem"
        write_cert(self.ca_file, ca[0])
        cert, key = new_leaf("127.0.0.1", ca, server_names=("127.0.0.1",))
        write_cert(workdir / "echo.pem", cert)
        write_key(workdir / "echo.key", key)
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self._ctx.load_cert_chain(workdir / "echo.pem", workdir / "echo.key")
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        raw, _ = self._listener.accept()
        with self._ctx.wrap_socket(raw, server_side=True) as tls:
            while data := tls.recv(65536):
                tls.sendall(data)

    def close(self) -> None:
        self._listener.close()


def test_session_tickets_do_not_stall_the_relay(tmp_path: Path) -> None:
    """The camera's TLS 1.3 session tickets arrive while FFmpeg has not spoken yet: the relay
    must not sit in a blocking read waiting for data that only FFmpeg's request would bring."""
    server = TicketingEchoServer(tmp_path)
    relay = TlsRelay.open(
        f"rtsps://127.0.0.1:{server.port}/cam", TlsSettings(server.ca_file), timeout_s=5.0
    )
    port = int(relay.local_url.split(":")[2].split("/")[0])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as mine:
            time.sleep(0.5)  # the tickets are in the relay's socket before our first byte
            t0 = time.monotonic()
            mine.sendall(b"OPTIONS rtsp://127.0.0.1/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n")
            assert mine.recv(65536).startswith(b"OPTIONS ")  # echoed through the relay
            assert time.monotonic() - t0 < 1.0
    finally:
        relay.close()
        server.close()
