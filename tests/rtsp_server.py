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
import datetime
import ipaddress
import os
import secrets
import selectors
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = REPO / "deploy" / "rtsp_test_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
START_TIMEOUT_S = 20.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def make_ca(
    workdir: Path, name: str = "edge-gate test CA"
) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    """A self-signed CA certificate (PEM file) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    path = workdir / f"{name.replace(' ', '_')}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key


def make_server_cert(
    workdir: Path,
    ca_file: Path,
    ca_key: ec.EllipticCurvePrivateKey,
    names: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> tuple[Path, Path]:
    """A server certificate for ``names`` (DNS names or IPs) signed by the CA; (cert, key)."""
    ca_cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    stem = "_".join(names).replace(".", "-")
    cert_path = workdir / f"server_{stem}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = _write_private(
        workdir / f"server_{stem}.key",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
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
        ca: tuple[Path, ec.EllipticCurvePrivateKey] | None = None,
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
            self.ca_file, ca_key = ca or make_ca(workdir)
            self._cert = make_server_cert(workdir, self.ca_file, ca_key, cert_names)
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
