"""sd_notify adapter against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_gate.service.notify import (
    MAX_STATUS_CHARS,
    Notifier,
    watchdog_interval_s,
    watchdog_timeout_s,
)

pytestmark = pytest.mark.timeout(30)


def _receive(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode("utf-8")
    assert data.endswith("\n")
    return dict(line.split("=", 1) for line in data.splitlines())


@pytest.fixture
def path_socket() -> Iterator[tuple[socket.socket, str]]:
    # tmp_path can exceed sun_path's 108 bytes; a short private directory cannot.
    with tempfile.TemporaryDirectory(prefix="egn") as d:
        path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(5)
        try:
            yield sock, path
        finally:
            sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    name = f"edge-gate-test-{secrets.token_hex(8)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        yield sock, "@" + name
    finally:
        sock.close()


def test_lifecycle_messages_reach_a_path_socket(path_socket: tuple[socket.socket, str]) -> None:
    """A daemon's life (ready, status, watchdog, reload, stop) arrives as sd_notify datagrams."""
    sock, path = path_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    try:
        assert notifier.ready("door-1: ready, 3 enrolled")
        assert _receive(sock) == {"READY": "1", "STATUS": "door-1: ready, 3 enrolled"}
        assert notifier.status("pipeline 14.8 fps")
        assert _receive(sock) == {"STATUS": "pipeline 14.8 fps"}
        assert notifier.watchdog()
        assert _receive(sock) == {"WATCHDOG": "1"}
        assert notifier.extend_timeout(2.5)
        assert _receive(sock) == {"EXTEND_TIMEOUT_USEC": "2500000"}
        assert notifier.reloading()
        assert _receive(sock) == {"RELOADING": "1"}
        assert notifier.stopping("stopping: door locked")
        assert _receive(sock) == {"STOPPING": "1", "STATUS": "stopping: door locked"}
    finally:
        notifier.close()


def test_abstract_socket_address(abstract_socket: tuple[socket.socket, str]) -> None:
    """``@name`` in $NOTIFY_SOCKET means the abstract namespace, as systemd uses it."""
    sock, value = abstract_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": value})
    try:
        assert notifier.ready()
        assert _receive(sock) == {"READY": "1"}
    finally:
        notifier.close()


def test_unset_socket_is_a_no_op() -> None:
    """Without $NOTIFY_SOCKET (terminal, tests) every call does nothing and reports False."""
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert not notifier.status("x")
    assert not notifier.stopping()
    notifier.close()


@pytest.mark.parametrize("value", ["relative/path", "@", "vsock:2:1234", "/" + "x" * 200])
def test_unusable_socket_values_disable_notifications(value: str) -> None:
    """A $NOTIFY_SOCKET we cannot use disables notifications instead of crashing the daemon."""
    notifier = Notifier.from_env({"NOTIFY_SOCKET": value})
    assert not notifier.enabled
    assert not notifier.ready()


def test_vanished_socket_reports_failure_without_raising() -> None:
    """When systemd's socket is gone the send fails quietly (False), never an exception."""
    with tempfile.TemporaryDirectory(prefix="egn") as d:
        notifier = Notifier.from_env({"NOTIFY_SOCKET": os.path.join(d, "gone")})
        try:
            assert notifier.enabled
            assert not notifier.watchdog()
        finally:
            notifier.close()


@given(st.text(max_size=400))
def test_status_is_always_one_bounded_line(text: str) -> None:
    """Any status text (newlines, control characters, huge) becomes one STATUS line."""
    name = f"edge-gate-hyp-{secrets.token_hex(8)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        receiver.settimeout(5)
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        try:
            assert notifier.status(text)
            data = receiver.recv(65536).decode("utf-8")
        finally:
            notifier.close()
    lines = data.split("\n")
    assert lines[-1] == ""
    assert len(lines) == 2
    assert lines[0].startswith("STATUS=")
    assert len(lines[0]) <= len("STATUS=") + MAX_STATUS_CHARS


def test_watchdog_interval_is_half_the_timeout() -> None:
    """WatchdogSec=10s → WATCHDOG_USEC=10000000 → ping every 5 s."""
    env = {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_timeout_s(env) == 10.0
    assert watchdog_interval_s(env) == 5.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "3000000"}) == 1.5


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"},
        {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "not-a-pid"},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "-5"},
        {"WATCHDOG_USEC": "ten"},
        {"WATCHDOG_USEC": "\u00b2"},
        {"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "\u0664\u0662\u0664\u0662"},
    ],
)
def test_watchdog_disabled(env: dict[str, str]) -> None:
    """No watchdog when unset, meant for another process, or malformed."""
    assert watchdog_interval_s(env, pid=4242) is None
