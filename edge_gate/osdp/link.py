"""The byte channel libosdp is handed: a pyserial port that survives unplug/replug.

libosdp calls :meth:`SerialLink.read`/:meth:`SerialLink.write` from its refresh loop (every
~20 ms) and must never see an exception: a port error closes the port, reads then return
``b""`` and writes ``0`` until a reopen (exponential backoff) succeeds. libosdp notices the
silence, marks the PD offline and re-establishes the Secure Channel when bytes flow again.
"""

from __future__ import annotations

import contextlib
import logging
import termios
import time
from collections.abc import Callable

import osdp
import serial

log = logging.getLogger(__name__)

_PORT_ERRORS = (serial.SerialException, OSError, termios.error, ValueError)


class SerialLink(osdp.Channel):
    """pyserial port opened exclusively and non-blocking; reopened with backoff after errors."""

    def __init__(
        self,
        port: str,
        baudrate: int,
        *,
        backoff_min_s: float = 0.05,
        backoff_max_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.port = port
        self._baudrate = baudrate
        self._backoff_min_s = backoff_min_s
        self._backoff_max_s = backoff_max_s
        self._backoff_s = backoff_min_s
        self._clock = clock
        self._serial: serial.Serial | None = None
        self._next_attempt_s = 0.0
        self.last_error = "not opened yet"
        self.reopened = 0

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def _ensure_open(self) -> serial.Serial | None:
        if self._serial is not None:
            return self._serial
        if self._clock() < self._next_attempt_s:
            return None
        try:
            ser = serial.Serial(
                self.port, self._baudrate, timeout=0, write_timeout=0.5, exclusive=True
            )
        except _PORT_ERRORS as e:
            self._fail(str(e))
            return None
        with contextlib.suppress(*_PORT_ERRORS):
            ser.reset_input_buffer()
        self._serial = ser
        self._backoff_s = self._backoff_min_s
        self.reopened += 1
        log.info("osdp.port_opened", extra={"EG_PORT": self.port})
        return ser

    def _fail(self, why: str) -> None:
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
            self._serial = None
            log.warning("osdp.port_lost", extra={"EG_PORT": self.port, "EG_ERROR": why})
        self.last_error = why
        self._next_attempt_s = self._clock() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, self._backoff_max_s)

    def read(self, max_bytes: int) -> bytes:
        ser = self._ensure_open()
        if ser is None:
            return b""
        try:
            return bytes(ser.read(max_bytes))
        except _PORT_ERRORS as e:
            self._fail(str(e))
            return b""

    def write(self, buf: bytes) -> int:
        ser = self._ensure_open()
        if ser is None:
            return 0
        try:
            return int(ser.write(buf) or 0)
        except _PORT_ERRORS as e:
            self._fail(str(e))
            return 0

    def flush(self) -> None:
        ser = self._ensure_open()
        if ser is None:
            return
        try:
            ser.reset_input_buffer()
        except _PORT_ERRORS as e:
            self._fail(str(e))

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
            self._serial = None
        self.last_error = "closed"
