"""Logging to journald with structured ``EG_*`` fields, or to stderr when systemd-python is absent.

Call sites use ``logging.getLogger(__name__)``, a stable event name as the message and data in
``extra``: ``log.info("access.granted", extra={"EG_DOOR": door, "EG_USER": uid})``. Never put
names, images, embeddings, keys, MACs or passwords into log records.
"""

from __future__ import annotations

import logging
import os
import sys

_FIELD_PREFIX = "EG_"


class _KeyValueFormatter(logging.Formatter):
    """``LEVEL logger: message EG_FIELD=value ...`` for terminals and plain log files."""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        fields = " ".join(
            f"{k}={v}" for k, v in sorted(vars(record).items()) if k.startswith(_FIELD_PREFIX)
        )
        return f"{base} {fields}" if fields else base


def _journal_handler() -> logging.Handler | None:
    if not os.environ.get("JOURNAL_STREAM") and not os.environ.get("INVOCATION_ID"):
        return None  # not started by systemd: journald would not be where the operator looks
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return None
    handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="edge-gate")
    return handler


def setup_logging(level: int = logging.INFO, *, stream: object = None) -> None:
    """Install one handler on the root logger: journald under systemd, else stderr."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = _journal_handler()
    if handler is None:
        out = stream if stream is not None else sys.stderr
        handler = logging.StreamHandler(out)  # type: ignore[arg-type]
        handler.setFormatter(_KeyValueFormatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
