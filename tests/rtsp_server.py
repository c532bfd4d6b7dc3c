"""A real RTSP(S) server for tests: ``deploy/rtsp_test_server.py`` run by the system python.

    with RtspTestServer(clip, tmp_path, password="s3cret") as srv:
        srv.url               # rtsp://127.0.0.1:<port>/cam (no credentials)
        srv.username_file     # 0600 files for [camera] username_file / password_file
        srv.kill(); srv.start()   # camera reboot: same port, same credentials

``tls=True`` serves ``rtsps://`` with a certificate for 127.0.0.1/localhost signed by a fresh
test CA (``srv.ca_file``), or by ``ca=make_ca(...)`` shared with other servers. Certificates
are made with ``cryptography``; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from edge_gate_dev.pki import CA, new_ca, new_leaf, write_cert, write_key

REPO = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = REPO / "deploy" / "rtsp_test_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
START_TIMEOUT_S = 20.0


def _write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def make_ca(workdir: Path, name: str = "edge-gate test CA") -> tuple[Path, CA]:
    """A self-signed CA: its certificate as a PEM file, and the CA itself for signing."""
    ca = new_ca(name)
    path = workdir / f"{name.replace(' ', '_')}.pem"
    write_cert(path, ca[0])
    return path, ca


def make_server_cert(
    workdir: Path, ca: CA, names: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> tuple[Path, Path]:
    """A server certificate for ``names`` (DNS names or IPs) signed by ``ca``; (cert, key)."""
    cert, key = new_leaf(names[0], ca, server_names=names)
    stem = "_".join(names).replace(".", "-")
    cert_path, key_path = workdir / f"server_{stem}.pem", workdir / f"server_{stem}.key"
    write_cert(cert_path, cert)
    write_key(key_path, key)
    return cert_path, key_path


class RtspTestServer:
    """GStreamer's RTSP server looping ``clip``; a context manager with kill/restart."""

    def __init__(
        self,
        clip: Path,
        workdir: Path,
        *,
        username: str = "door-cam",
        password: str | None = None,
        tls: bool = False,
        cert_names: tuple[str, ...] = ("localhost", "127.0.0.1"),
        ca: tuple[Path, CA] | None = None,
        width: int = 0,
        height: int = 0,
        fps: int = 15,
        mount: str = "/cam",
        port: int | None = None,
    ) -> None:
        self.clip = clip
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.username = username
        # reserved URL characters on purpose: the client must percent-encode them
        self.password = password or f"c0rrect:h@rse/b%{secrets.token_urlsafe(9)}"
        # 0: the server binds an ephemeral port itself (no race with other test runs on the box);
        # restarts then reuse the port it reported
        self.port = port or 0
        self.mount = mount
        self.tls = tls
        self._size = (width, height)
        self.fps = fps
        self.username_file = _write_private(workdir / "camera.username", username.encode())
        self.password_file = _write_private(workdir / "camera.password", self.password.encode())
        self.ca_file: Path | None = None
        self._cert: tuple[Path, Path] | None = None
        if tls:
            self.ca_file, signer = ca or make_ca(workdir)
            self._cert = make_server_cert(workdir, signer, cert_names)
        self.log_file = workdir / f"rtsp_server_{id(self):x}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.ready_at_s: float | None = None

    @property
    def url(self) -> str:
        scheme = "rtsps" if self.tls else "rtsp"
        return f"{scheme}://127.0.0.1:{self.port}{self.mount}"

    def _argv(self) -> list[str]:
        argv = [
            SYSTEM_PYTHON,
            str(SERVER_SCRIPT),
            "--clip",
            str(self.clip),
            "--port",
            str(self.port),
            "--mount",
            self.mount,
            "--fps",
            str(self.fps),
            "--user",
            self.username,
            "--password-file",
            str(self.password_file),
        ]
        if self._size[0] and self._size[1]:
            argv += ["--width", str(self._size[0]), "--height", str(self._size[1])]
        if self._cert is not None:
            argv += ["--tls-cert", str(self._cert[0]), "--tls-key", str(self._cert[1])]
        return argv

    def start(self) -> None:
        """Launch and wait for ``READY``; ``ready_at_s`` is the monotonic time it was ready."""
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError("server already running")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                self._argv(), stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
            )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            line = b""
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self.kill()
                    raise RuntimeError(f"RTSP server did not start; see {self.log_file}")
                chunk = os.read(self._proc.stdout.fileno(), 256)
                if not chunk:
                    raise RuntimeError(f"RTSP server exited; see {self.log_file}")
                line += chunk
        if not line.startswith(b"READY"):
            self.kill()
            raise RuntimeError(f"unexpected RTSP server output {line!r}")
        self.port = int(line.split()[1])
        self.ready_at_s = time.monotonic()

    def kill(self) -> None:
        """SIGKILL, like a camera losing power."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def pause(self) -> None:
        """SIGSTOP: the camera hangs with its connections open (a silent stall)."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM (graceful), SIGKILL after 5 s."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGCONT)
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def __enter__(self) -> RtspTestServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
