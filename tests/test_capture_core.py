"""Pure parts of capture: URLs and redaction, backoff, downscale, LatestFrame, auth headers."""

from __future__ import annotations

import hashlib
import threading
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_gate.capture.backoff import BackoffPolicy
from edge_gate.capture.failure import CaptureFailure, failure_from_rtsp_status
from edge_gate.capture.frame import Frame, fit_within
from edge_gate.capture.latest import LatestFrame
from edge_gate.capture.rtsp_check import authorization
from edge_gate.capture.sources import Credentials
from edge_gate.capture.url import (
    SourceKind,
    parse_source,
    redact,
    secret_forms,
    with_credentials,
)
from edge_gate.errors import ConfigError

printable = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.sampled_from("é€ß"),
    min_size=1,
    max_size=24,
)


@pytest.mark.parametrize(
    ("url", "kind", "target"),
    [
        ("rtsp://cam.local:8554/stream1", SourceKind.RTSP, "rtsp://cam.local:8554/stream1"),
        ("RTSPS://10.0.0.5/h264", SourceKind.RTSPS, "rtsps://10.0.0.5/h264"),
        ("/dev/video0", SourceKind.V4L2, "/dev/video0"),
        (
            "/dev/v4l/by-id/usb-cam-video-index0",
            SourceKind.V4L2,
            "/dev/v4l/by-id/usb-cam-video-index0",
        ),
        ("v4l2:///dev/video2", SourceKind.V4L2, "/dev/video2"),
        ("file:///srv/clips/door%20a.mp4", SourceKind.FILE, "/srv/clips/door a.mp4"),
        ("/srv/clips/door.mp4", SourceKind.FILE, "/srv/clips/door.mp4"),
    ],
)
def test_parse_source_kinds(url: str, kind: SourceKind, target: str) -> None:
    """Every supported spelling maps to its backend and a credential-free target."""
    loc = parse_source(url)
    assert (loc.kind, loc.target) == (kind, target)


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://admin:hunter22@cam.local/stream",
        "rtsp://admin@cam.local/stream",
        "rtsps://:hunter22@cam.local/stream",
        "rtsp://a:b@c@cam.local/stream",
    ],
)
def test_credentials_in_configured_url_are_refused(url: str) -> None:
    """A URL with a user or password in the config is an error, and the error is redacted."""
    with pytest.raises(ConfigError) as info:
        parse_source(url)
    assert "hunter22" not in str(info.value)
    assert "username_file" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://cam/x",
        "rtsp:///nohost",
        "cam.local/stream",
        "rtsp://cam:99999/x",
        "",
        "rtsp://c/a b",
    ],
)
def test_unsupported_urls_are_refused(url: str) -> None:
    """Unknown schemes, missing hosts, bad ports and blanks are config errors."""
    with pytest.raises(ConfigError):
        parse_source(url)


@given(username=printable, password=printable)
@settings(max_examples=200, deadline=None)
def test_credentials_round_trip_and_redact(username: str, password: str) -> None:
    """Any user/password survives percent-encoding exactly, and redaction removes all of it."""
    base = "rtsp://192.0.2.7:8554/door/main"
    full = with_credentials(base, username, password)
    parts = urlsplit(full)
    assert (parts.hostname, parts.port, parts.path) == ("192.0.2.7", 8554, "/door/main")
    assert unquote(parts.username or "") == username
    assert unquote(parts.password or "") == password
    assert redact(full) == "rtsp://***@192.0.2.7:8554/door/main"


@given(password=printable)
@settings(max_examples=100, deadline=None)
def test_redact_blanks_secrets_inside_free_text(password: str) -> None:
    """A backend message echoing the password in any spelling loses it."""
    if len(password) < 3:
        return
    msg = f"open failed for user x with {password} and rtsp://x:{password}@h/p ({password})"
    out = redact(msg, secret_forms(password))
    for form in secret_forms(password):
        assert form not in out


def test_credentials_repr_hides_password() -> None:
    """Credentials never print their password (tracebacks, debug logs)."""
    creds = Credentials("door", "hunter22")
    assert "hunter22" not in repr(creds)
    assert "hunter22" not in str(creds)


def test_with_credentials_refuses_double() -> None:
    """Adding credentials to a URL that already has some is refused."""
    with pytest.raises(ConfigError):
        with_credentials("rtsp://a:b@h/p", "u", "p")


@given(
    attempt=st.integers(0, 200),
    unit=st.floats(0, 1, exclude_max=True),
    slow=st.booleans(),
)
def test_backoff_bounded_and_jittered(attempt: int, unit: float, slow: bool) -> None:
    """Each delay is within [(1 - jitter) * nominal, nominal] and never above the cap."""
    p = BackoffPolicy(initial_s=0.25, max_s=4.0, jitter=0.3, slow_initial_s=2.0, slow_max_s=30.0)
    base, cap = (2.0, 30.0) if slow else (0.25, 4.0)
    nominal = min(cap, base * 2.0 ** min(attempt, 64))
    d = p.delay_s(attempt, unit, slow=slow)
    assert nominal * 0.7 - 1e-9 <= d <= nominal + 1e-9
    assert d <= cap


def test_backoff_grows_exponentially_then_caps() -> None:
    """Without jitter the delays double until the cap."""
    p = BackoffPolicy(initial_s=0.25, max_s=2.0, jitter=0.0)
    assert [p.delay_s(n, 0.5) for n in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_backoff_rejects_nonsense() -> None:
    """Inverted bounds are refused at construction."""
    with pytest.raises(ValueError, match="backoff"):
        BackoffPolicy(initial_s=5, max_s=1)


@given(
    w=st.integers(1, 8000), h=st.integers(1, 8000), mw=st.integers(1, 4000), mh=st.integers(1, 4000)
)
def test_fit_within_keeps_aspect_and_never_upscales(w: int, h: int, mw: int, mh: int) -> None:
    """The fitted size fits the box (±1 px rounding), keeps the aspect and never grows."""
    fw, fh = fit_within(w, h, mw, mh)
    assert 1 <= fw <= w
    assert 1 <= fh <= h
    scale = min(mw / w, mh / h, 1.0)
    # same scale on both axes (aspect kept), up to rounding and the 1 px floor
    assert fw == 1 or abs(fw - w * scale) <= 0.5 + 1e-9
    assert fh == 1 or abs(fh - h * scale) <= 0.5 + 1e-9
    assert fw <= max(mw, 1) + 1
    assert fh <= max(mh, 1) + 1


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (200, None),
        (401, CaptureFailure.AUTH_FAILED),
        (403, CaptureFailure.AUTH_FAILED),
        (404, CaptureFailure.NOT_FOUND),
        (503, CaptureFailure.OPEN_FAILED),
    ],
)
def test_rtsp_status_mapping(status: int, failure: CaptureFailure | None) -> None:
    """RTSP answers map to the reasons the installer sees."""
    assert failure_from_rtsp_status(status) is failure


def test_digest_authorization_matches_rfc2617() -> None:
    """The Digest response follows RFC 2617 (qop-less form, as most cameras use)."""
    header = authorization(
        ['Digest realm="IP Camera", nonce="abc123"', 'Basic realm="IP Camera"'],
        "DESCRIBE",
        "rtsp://h/p",
        "admin",
        "pw",
    )
    assert header is not None
    assert header.startswith("Digest ")
    ha1 = hashlib.md5(b"admin:IP Camera:pw").hexdigest()  # noqa: S324 - RFC 2617 test vector
    ha2 = hashlib.md5(b"DESCRIBE:rtsp://h/p").hexdigest()  # noqa: S324
    expected = hashlib.md5(f"{ha1}:abc123:{ha2}".encode()).hexdigest()  # noqa: S324
    assert f'response="{expected}"' in header
    basic = authorization(['Basic realm="x"'], "DESCRIBE", "rtsp://h/p", "a", "b")
    assert basic == "Basic YTpi"
    assert authorization(["Bearer x"], "DESCRIBE", "u", "a", "b") is None


def _frame(seq: int) -> Frame:
    return Frame(np.zeros((2, 2, 3), np.uint8), float(seq), seq)


def test_latest_frame_newest_wins_and_counts_drops() -> None:
    """Three puts, one get: the consumer sees the third; two were dropped."""
    slot: LatestFrame[Frame] = LatestFrame()
    for i in range(3):
        slot.put(_frame(i))
    got = slot.get(0.1)
    assert got is not None
    assert got.seq == 2
    assert slot.get(0.01) is None
    assert (slot.stats().put, slot.stats().taken, slot.stats().dropped) == (3, 1, 2)


@pytest.mark.timeout(10)
def test_latest_frame_wakes_waiter_and_close() -> None:
    """A waiting consumer wakes on put; close() releases waiters with None."""
    slot: LatestFrame[Frame] = LatestFrame()
    results: list[Frame | None] = []
    t = threading.Thread(target=lambda: results.append(slot.get(5.0)))
    t.start()
    slot.put(_frame(7))
    t.join(5.0)
    assert results
    first = results[0]
    assert first is not None
    assert first.seq == 7
    t2 = threading.Thread(target=lambda: results.append(slot.get(5.0)))
    t2.start()
    slot.close()
    t2.join(5.0)
    assert not t2.is_alive()
    assert results[1] is None


@pytest.mark.timeout(20)
def test_latest_frame_producer_never_blocks_on_a_stuck_consumer() -> None:
    """10 000 puts with nobody reading finish at once and keep one item."""
    slot: LatestFrame[Frame] = LatestFrame()
    frame = _frame(0)
    for _ in range(10_000):
        slot.put(frame)
    assert slot.stats().dropped == 9_999
