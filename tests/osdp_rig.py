"""OSDP test rig: real ptys between real libosdp ends.

- :func:`socat_link`: two pty links joined by socat (kill it to "unplug" the reader cable);
- :class:`SimProcess`: ``python -m edge_gate_dev.osdp_sim pd|cp`` in its own process, its JSON
  lines collected by a thread;
- :class:`MitmPty`: two pty pairs joined by a relay thread that sees whole OSDP frames in
  both directions and may flip bits (fixing the CRC, so only Secure Channel can notice),
  replay recorded frames or replace the line with garbage.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

from edge_gate.fsutil import atomic_write

REPO = Path(__file__).resolve().parent.parent
SOM = 0x53
SCB_ENCRYPTED_FROM_CP = 0x17  # SCS_17: CP → PD, encrypted data + MAC (e.g. an osdp_OUT)


def write_scbk(path: Path, key: bytes | None = None) -> bytes:
    key = key if key is not None else secrets.token_bytes(16)
    atomic_write(path, key.hex().encode() + b"\n")
    return key


def wait_until(pred: Callable[[], bool], timeout_s: float, step_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step_s)
    return pred()


class SocatLink:
    """Two pty links ``a`` and ``b`` joined by socat; :meth:`unplug` / :meth:`plug` it."""

    def __init__(self, directory: Path) -> None:
        self.a = str(directory / "osdp-a")
        self.b = str(directory / "osdp-b")
        self._proc: subprocess.Popen[bytes] | None = None

    def plug(self) -> None:
        self._proc = subprocess.Popen(
            [
                "socat",
                f"pty,raw,echo=0,link={self.a}",
                f"pty,raw,echo=0,link={self.b}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_until(lambda: os.path.exists(self.a) and os.path.exists(self.b), 5.0):
            raise RuntimeError("socat did not create its ptys")

    def unplug(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(5)
            self._proc = None
        wait_until(lambda: not os.path.exists(self.a), 2.0)


@contextlib.contextmanager
def socat_link(directory: Path) -> Iterator[SocatLink]:
    link = SocatLink(directory)
    link.plug()
    try:
        yield link
    finally:
        link.unplug()


class SimProcess:
    """An OSDP simulator (libosdp) in another process; its JSON events in :attr:`events`."""

    def __init__(self, role: str, port: str, scbk_file: Path, *extra: str, address: int = 1):
        self.events: list[dict[str, object]] = []
        self._lock = threading.Lock()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge_gate_dev.osdp_sim",
                role,
                "--port",
                port,
                "--address",
                str(address),
                "--scbk-file",
                str(scbk_file),
                *extra,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.wait_for(lambda e: e["event"] == "ready", 10.0):
            self.close()
            raise RuntimeError(f"osdp sim {role} did not start")

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def of(self, kind: str) -> list[dict[str, object]]:
        with self._lock:
            return [e for e in self.events if e["event"] == kind]

    def wait_for(self, pred: Callable[[dict[str, object]], bool], timeout_s: float) -> bool:
        def seen() -> bool:
            with self._lock:
                return any(pred(e) for e in self.events)

        return wait_until(seen, timeout_s)

    def send(self, line: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line.encode() + b"\n")
        self._proc.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.send("quit")
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        self._reader.join(5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def crc16(data: bytes) -> int:
    """OSDP's CRC-16 (CCITT polynomial 0x1021, initial value 0x1D0F)."""
    crc = 0x1D0F
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def scb_type(frame: bytes) -> int | None:
    """The Secure Channel block type of a frame, None without one."""
    if len(frame) < 7 or not frame[4] & 0x08:
        return None
    return frame[6]


def flip_bit_fix_crc(frame: bytes, bit: int) -> bytes:
    """``frame`` with one payload bit flipped and a valid CRC again (only the MAC can tell)."""
    body = bytearray(frame[:-2])
    start = 5 + body[5]  # after header and the secure channel block
    index = start + (bit // 8) % (len(body) - start)
    body[index] ^= 1 << (bit % 8)
    crc = crc16(bytes(body))
    return bytes(body) + bytes([crc & 0xFF, crc >> 8])


class _Framer:
    """Splits a byte stream into OSDP frames (bytes before a SOM pass through alone)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while self._buf:
            if self._buf[0] != SOM:
                out.append(bytes(self._buf[:1]))
                del self._buf[:1]
                continue
            if len(self._buf) < 4:
                break
            length = self._buf[2] | self._buf[3] << 8
            if length < 8 or length > 1500:  # not a frame: pass the byte on
                out.append(bytes(self._buf[:1]))
                del self._buf[:1]
                continue
            if len(self._buf) < length:
                break
            out.append(bytes(self._buf[:length]))
            del self._buf[:length]
        return out


Mutator = Callable[[bytes], bytes | None]


class MitmPty:
    """CP ↔ relay thread ↔ PD over two real pty pairs; the thread sees whole frames."""

    def __init__(self) -> None:
        self._cp_master, cp_slave = os.openpty()
        self._pd_master, pd_slave = os.openpty()
        for fd in (self._cp_master, cp_slave, self._pd_master, pd_slave):
            tty.setraw(fd)
        self.cp_port = os.ttyname(cp_slave)
        self.pd_port = os.ttyname(pd_slave)
        self._slaves = (cp_slave, pd_slave)  # kept open: a pty master reads EIO without them
        self.to_pd: Mutator | None = None  # CP → PD frames go through this when set
        self.garbage_to_cp = False  # replace PD → CP bytes with random bytes
        self.recorded_to_pd: list[bytes] = []
        self.crc_checked = 0
        self._inject: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def inject_to_pd(self, frame: bytes) -> None:
        with self._lock:
            self._inject.append(frame)

    def _run(self) -> None:
        to_pd, to_cp = _Framer(), _Framer()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._cp_master, self._pd_master], [], [], 0.05)
            with self._lock:
                injections, self._inject = self._inject, []
            for frame in injections:
                os.write(self._pd_master, frame)
            for fd in ready:
                try:
                    data = os.read(fd, 1024)
                except OSError:
                    continue
                if fd == self._cp_master:
                    for frame in to_pd.feed(data):
                        self._forward_to_pd(frame)
                elif self.garbage_to_cp:
                    os.write(self._cp_master, secrets.token_bytes(len(data)))
                else:
                    for frame in to_cp.feed(data):
                        os.write(self._cp_master, frame)

    def _forward_to_pd(self, frame: bytes) -> None:
        if len(frame) > 8 and frame[0] == SOM:
            crc = crc16(frame[:-2])
            if frame[-2:] == bytes([crc & 0xFF, crc >> 8]):  # the rig's CRC is OSDP's
                self.crc_checked += 1
            with self._lock:
                self.recorded_to_pd.append(frame)
        mutate = self.to_pd
        out = mutate(frame) if mutate is not None else frame
        if out:
            os.write(self._pd_master, out)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self._cp_master, self._pd_master, *self._slaves):
            with contextlib.suppress(OSError):
                os.close(fd)
