"""The gateway's persisted unlock counter: strictly increasing, fsynced before every use.

The file holds one line ``edge-gate-relay-counter 1 <decimal>``. A missing file starts at 0
(first start); an unreadable or malformed file is an error (fail closed: no unlock).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from edge_gate.door.codec import MAX_COUNTER
from edge_gate.errors import RelayError
from edge_gate.fsutil import atomic_write

log = logging.getLogger(__name__)

_MAGIC = "edge-gate-relay-counter 1"
_MAX_FILE_BYTES = 256


class CounterStore:
    """``reserve()`` returns the next counter only after it is durably on disk.

    The in-memory value never decreases, even if the file is later replaced by an older copy.
    """

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._value = self._read()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def value(self) -> int:
        """The last reserved (or loaded) counter."""
        return self._value

    def _read(self) -> int:
        try:
            with open(self._path, "rb") as fh:
                data = fh.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return 0
        except OSError as e:
            raise RelayError(f"{self._path}: cannot read relay counter: {e.strerror}") from e
        try:
            magic, _, number = data.decode("ascii").strip().rpartition(" ")
            value = int(number)
        except (UnicodeDecodeError, ValueError) as e:
            raise RelayError(f"{self._path}: malformed relay counter file") from e
        if magic != _MAGIC or not 0 <= value <= MAX_COUNTER or len(data) > _MAX_FILE_BYTES:
            raise RelayError(f"{self._path}: malformed relay counter file")
        return value

    def _write(self, value: int) -> None:
        try:
            atomic_write(self._path, f"{_MAGIC} {value}\n".encode("ascii"))
        except OSError as e:
            raise RelayError(f"{self._path}: cannot persist relay counter: {e.strerror}") from e

    def check_writable(self) -> None:
        """Persist the current value again: a start-up check that the next unlock can be
        recorded (a read-only or full state directory is found before READY, not at the door)."""
        with self._lock:
            self._write(max(self._value, self._read()))

    def reserve(self) -> int:
        """Increment, persist (fsync + rename + dir fsync), then return the new counter."""
        with self._lock:
            # re-read: another tool (``edge-gate relay test``) may have used the file meanwhile
            value = max(self._value, self._read()) + 1
            if value > MAX_COUNTER:
                raise RelayError("relay counter exhausted; provision a new relay key")
            self._write(value)
            self._value = value
            return value

    def advance_to(self, value: int) -> None:
        """Move forward to at least ``value`` (never backwards), persisted."""
        with self._lock:
            if value > self._value:
                self._write(value)
                log.warning(
                    "relay.counter_advanced", extra={"EG_FROM": self._value, "EG_TO": value}
                )
                self._value = value
