"""Byte channels to the relay: a pyserial adapter that survives unplug/replug, and a raw fd.

The protocol code never opens a port: it is handed a :class:`Channel`. :class:`SerialChannel`
opens the device exclusively, and on any serial error closes it and retries the open with
exponential backoff; while the device is gone every operation raises
:class:`ChannelUnavailable` at once (the client turns that into ``relay_unavailable``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import termios
import time
from collections.abc import Callable
from typing import Protocol

import serial

from edge_gate.errors import RelayError

log = logging.getLogger(__name__)

_READ_CHUNK = 512
# pyserial lets termios.error (not an OSError) escape from tcflush & co on a vanished device
_PORT_ERRORS = (serial.SerialException, OSError, termios.error)


class ChannelUnavailable(RelayError):
    """The serial device is absent, unplugged or failing; retried in the background."""


class Channel(Protocol):
    def write(self, data: bytes) -> None:
        """Send all bytes or raise :class:`ChannelUnavailable`."""

    def read(self, timeout_s: float) -> bytes:
        """Return received bytes (possibly several frames), ``b""`` after ``timeout_s``."""

    def discard_input(self) -> None:
        """Drop bytes received but not yet read (stale answers)."""

    def close(self) -> None:
        """Release the device."""


class SerialChannel:
    """pyserial port opened with ``exclusive=True``; reopened with backoff after failures."""

    def __init__(
        self,
        port: str,
        baudrate: int,
        *,
        write_timeout_s: float = 0.5,
        backoff_min_s: float = 0.05,
        backoff_max_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._port = port
        self._baudrate = baudrate
        self._write_timeout_s = write_timeout_s
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._backoff_s = backoff_min_s
        self._clock = clock
        self._serial: serial.Serial | None = None
        self._next_attempt_s = 0.0
        self._last_error = "not opened yet"

    @property
    def port(self) -> str:
        return self._port

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    @property
    def last_error(self) -> str:
        return self._last_error

    def ensure_open(self) -> serial.Serial:
        """The open port, opening it if the backoff allows; else :class:`ChannelUnavailable`."""
        if self._serial is not None:
            return self._serial
        now = self._clock()
        if now < self._next_attempt_s:
            raise ChannelUnavailable(f"{self._port}: unavailable ({self._last_error})")
        try:
            ser = serial.Serial(
                self._port,
                self._baudrate,
                timeout=0,
                write_timeout=self._write_timeout_s,
                exclusive=True,
            )
        except (*_PORT_ERRORS, ValueError) as e:
            self._fail(str(e))
            raise ChannelUnavailable(f"{self._port}: cannot open: {e}") from e
        with contextlib.suppress(*_PORT_ERRORS):
            ser.reset_input_buffer()
        self._serial = ser
        self._backoff_s = self._backoff_min_s
        log.info("relay.port_opened", extra={"EG_PORT": self._port})
        return ser

    def _fail(self, why: str) -> None:
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
            self._serial = None
            log.warning("relay.port_lost", extra={"EG_PORT": self._port, "EG_ERROR": why})
        self._last_error = why
        self._next_attempt_s = self._clock() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, self._backoff_max_s)

    def write(self, data: bytes) -> None:
        ser = self.ensure_open()
        try:
            written = ser.write(data)
            ser.flush()
        except _PORT_ERRORS as e:
            self._fail(str(e))
            raise ChannelUnavailable(f"{self._port}: write failed: {e}") from e
        if written != len(data):
            self._fail("short write")
            raise ChannelUnavailable(f"{self._port}: short write")

    def read(self, timeout_s: float) -> bytes:
        ser = self.ensure_open()
        try:
            ser.timeout = max(0.0, timeout_s)
            first = ser.read(1)
            if not first:
                return b""
            waiting = ser.in_waiting
            ser.timeout = 0
            rest = ser.read(min(waiting, _READ_CHUNK)) if waiting else b""
        except _PORT_ERRORS as e:
            self._fail(str(e))
            raise ChannelUnavailable(f"{self._port}: read failed: {e}") from e
        return bytes(first) + bytes(rest)

    def discard_input(self) -> None:
        ser = self.ensure_open()
        try:
            ser.reset_input_buffer()
        except _PORT_ERRORS as e:
            self._fail(str(e))
            raise ChannelUnavailable(f"{self._port}: {e}") from e

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
            self._serial = None
        self._last_error = "closed"


class FdChannel:
    """A channel over an already open file descriptor (e.g. the master side of a pty)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                _, ready, _ = select.select([], [self._fd], [], 1.0)
                if not ready:
                    raise ChannelUnavailable("fd write timed out")
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as e:
            raise ChannelUnavailable(f"fd write failed: {e}") from e

    def read(self, timeout_s: float) -> bytes:
        try:
            ready, _, _ = select.select([self._fd], [], [], max(0.0, timeout_s))
            if not ready:
                return b""
            return os.read(self._fd, _READ_CHUNK)
        except OSError as e:
            if e.errno == errno.EIO:
                # pty master whose slave is not open (yet): nothing to read
                time.sleep(min(timeout_s, 0.05))
                return b""
            raise ChannelUnavailable(f"fd read failed: {e}") from e

    def discard_input(self) -> None:
        while self.read(0.0):
            pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
