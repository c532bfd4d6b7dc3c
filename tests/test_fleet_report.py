"""Whether the admin station trusts a gateway's report (signed ack / health), and the keys
`fleet keygen` makes for it (real Ed25519; no broker — that path is test_fleet_health.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_gate.audit.signing import EventSigner
from edge_gate.fleet.admin import FleetState, load_state, save_state
from edge_gate.fleet.keys import load_ack_key, parse_ack_public
from edge_gate.fleet.report import (
    SeenState,
    SeenStateError,
    Trust,
    check_report,
    load_seen,
    save_seen,
)
from tests.cli_helpers import json_lines, run

KEY_A = Ed25519PrivateKey.generate()
KEY_B = Ed25519PrivateKey.generate()


def _ack(gw: str = "gw-a", ts_ms: int = 1000) -> dict[str, object]:
    return {"gateway": gw, "ts_ms": ts_ms, "groups": {"lobby": {"version": 3}}}


def _check(body: dict[str, object], newest: int | None = None) -> Trust:
    return check_report(body, gateway="gw-a", key=KEY_A.public_key(), newest_ts_ms=newest)


def test_only_the_gateways_own_current_report_is_trusted() -> None:
    """Signed by its key, naming it, not older than the newest seen: trusted; anything else
    gets the verdict that says why."""
    good = EventSigner(KEY_A).sign(_ack())
    assert _check(good) is Trust.TRUSTED
    assert _check(good, newest=1000) is Trust.TRUSTED  # the same retained message again
    assert _check(good, newest=1001) is Trust.REPLAYED
    assert _check(_ack()) is Trust.UNSIGNED
    assert _check(EventSigner(KEY_B).sign(_ack())) is Trust.WRONG_KEY  # another gateway's key
    tampered = dict(good, groups={"lobby": {"version": 4}})
    assert _check(tampered) is Trust.BAD_SIGNATURE
    assert _check(EventSigner(KEY_A).sign(_ack(gw="gw-b"))) is Trust.WRONG_GATEWAY
    no_ts = EventSigner(KEY_A).sign({"gateway": "gw-a", "groups": {}})
    assert _check(no_ts) is Trust.MALFORMED
    assert _check(dict(good, sig="not base64!")) is Trust.MALFORMED
    no_key = check_report(good, gateway="gw-a", key=None, newest_ts_ms=None)
    assert no_key is Trust.NO_KEY


def test_seen_state_round_trip_and_damage(tmp_path: Path) -> None:
    """The newest trusted times survive a restart (0600); a damaged file is an error, not a
    silent reset that would let an old report pass again."""
    seen = SeenState()
    seen.note("gw-a", "applied", 5)
    seen.note("gw-a", "applied", 3)  # never goes back
    path = tmp_path / "state.json.seen"
    save_seen(path, seen)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_seen(path).get("gw-a", "applied") == 5
    assert load_seen(tmp_path / "absent").get("gw-a", "applied") is None
    path.write_text("{not json")
    path.chmod(0o600)
    with pytest.raises(SeenStateError):
        load_seen(path)


def test_keygen_writes_both_keys_and_add_gateway_registers_the_ack_key(tmp_path: Path) -> None:
    """`fleet keygen`: X25519 and Ed25519 keys, 0600, the public halves printed; it refuses to
    overwrite; `fleet add-gateway` stores the ack key, refusing a malformed one."""
    cfg = tmp_path / "edge-gate.toml"
    cfg.write_text(
        f'[mqtt]\ngateway_id = "gw-a"\n[fleet]\ngateway_key_file = "{tmp_path}/gw.key"\n'
        f'state_file = "{tmp_path}/state.json"\n'
    )
    res = run("fleet", "keygen", "--json", "--config", str(cfg))
    assert res.exit_code == 0, res.output
    (out,) = json_lines(res.output)
    for name in ("gw.key", "fleet-ack.key"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    ack = load_ack_key(tmp_path / "fleet-ack.key")
    assert (
        parse_ack_public(out["ack_key"]).public_bytes_raw() == ack.public_key().public_bytes_raw()
    )
    assert run("fleet", "keygen", "--config", str(cfg)).exit_code != 0
    save_state(tmp_path / "state.json", FleetState())
    bad = run(
        "fleet", "add-gateway", "lobby", "gw-a", out["public_key"], "AAAA", "--config", str(cfg)
    )
    assert bad.exit_code != 0
    res = run(
        "fleet",
        "add-gateway",
        "lobby",
        "gw-a",
        out["public_key"],
        out["ack_key"],
        "--config",
        str(cfg),
    )
    assert res.exit_code == 0, res.output
    state = load_state(tmp_path / "state.json")
    assert state.ack_keys == {"gw-a": out["ack_key"]}
    assert json.loads((tmp_path / "state.json").read_text())["ack_keys"] == state.ack_keys
