"""`edge-gate fleet init|keygen|add-gateway|enroll|revoke|publish|status|follow`.

Admin station: ``init`` (fleet signing key + state), ``add-gateway`` (a gateway and its public
key join a door group), ``enroll``/``revoke`` (a person of the master gallery joins/leaves a
group), ``publish`` (the changed groups go out as signed, encrypted bundles), ``status`` (what
each gateway applied, its lag, whether it is online, its last event, camera and door state — from
reports signed by the gateway's own key). Gateway: ``keygen`` (its X25519 and Ed25519 keys;
prints the public halves for ``add-gateway``) and ``follow`` (the sidecar that applies bundles to
the local gallery; the daemon reloads it by itself). No TensorFlow Lite or OpenCV is imported.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType

import click

from edge_gate.cli.gallery_common import check_user_id, echo_json
from edge_gate.cli.support import config_option, exit_on_errors, fail, json_option, load_or_exit
from edge_gate.config import EdgeGateConfig
from edge_gate.errors import SecretFileError
from edge_gate.fleet.topics import FleetTopics

ADMIN_ROLE = "fleet-admin"


def _topics(cfg: EdgeGateConfig) -> FleetTopics:
    return FleetTopics(cfg.mqtt.topic_prefix)


@click.group("fleet")
def fleet() -> None:
    """Many doors: door groups, signed and encrypted gallery bundles over MQTT."""


@fleet.command("init")
@click.option("--public-key-out", type=click.Path(path_type=Path, dir_okay=False), default=None)
@json_option
@config_option
def fleet_init(public_key_out: Path | None, as_json: bool, config_path: Path | None) -> None:
    """Create the fleet signing key (0600) and an empty state (admin station)."""
    from edge_gate.fleet.admin import FleetState, save_state
    from edge_gate.fleet.keys import raw_public, write_new_signing_key
    from edge_gate.fsutil import atomic_write

    cfg = load_or_exit(config_path)
    with exit_on_errors("fleet init"):
        if cfg.fleet.signing_key_file.exists():
            fail(f"{cfg.fleet.signing_key_file}: a fleet key exists already", command="fleet init")
        key = write_new_signing_key(cfg.fleet.signing_key_file)
        if not cfg.fleet.state_file.exists():
            save_state(cfg.fleet.state_file, FleetState())
        pub = raw_public(key.public_key())
        if public_key_out is not None:
            atomic_write(public_key_out, (pub + "\n").encode("ascii"), mode=0o644)
    if as_json:
        echo_json({"public_key": pub})
    else:
        click.echo(pub)


@fleet.command("keygen")
@json_option
@config_option
def fleet_keygen(as_json: bool, config_path: Path | None) -> None:
    """Create this gateway's keys (0600): X25519 (bundles are sealed to it) and Ed25519 (signs
    its acknowledgements and health). Prints both public halves, as `fleet add-gateway` takes
    them; a key that exists already is kept (so an older gateway gains its ack key)."""
    from edge_gate.fleet.keys import (
        load_ack_key,
        load_gateway_key,
        raw_public,
        write_new_gateway_key,
        write_new_signing_key,
    )

    cfg = load_or_exit(config_path)
    with exit_on_errors("fleet keygen"):
        f = cfg.fleet
        if f.gateway_key_file.exists() and f.ack_key_file.exists():
            fail(
                f"{f.gateway_key_file} and {f.ack_key_file}: exist already", command="fleet keygen"
            )
        enc = (
            load_gateway_key(f.gateway_key_file)
            if f.gateway_key_file.exists()
            else write_new_gateway_key(f.gateway_key_file)
        )
        ack = (
            load_ack_key(f.ack_key_file)
            if f.ack_key_file.exists()
            else write_new_signing_key(f.ack_key_file)
        )
        pub, ack_pub = raw_public(enc.public_key()), raw_public(ack.public_key())
    if as_json:
        echo_json({"gateway": cfg.mqtt.gateway_id, "public_key": pub, "ack_key": ack_pub})
    else:
        click.echo(f"{pub} {ack_pub}")


@fleet.command("add-gateway")
@click.argument("group")
@click.argument("gateway_id")
@click.argument("public_key")
@click.argument("ack_key", required=False)
@config_option
def fleet_add_gateway(
    group: str, gateway_id: str, public_key: str, ack_key: str | None, config_path: Path | None
) -> None:
    """A gateway (and the public keys `fleet keygen` printed on it) joins a door group.

    ACK_KEY registers the gateway's signing key: `fleet status` trusts only acknowledgements
    and health messages it signed (without one they show as no_key)."""
    from edge_gate.config.fleet import FleetConfig
    from edge_gate.fleet.admin import Group, load_state, save_state
    from edge_gate.fleet.keys import parse_ack_public, parse_gateway_public

    cfg = load_or_exit(config_path)
    try:
        FleetConfig(groups=(group,))
        parse_gateway_public(public_key)
        if ack_key is not None:
            parse_ack_public(ack_key)
    except ValueError as e:
        fail(f"bad group name or public key: {str(e).splitlines()[0]}", command="fleet add-gateway")
    with exit_on_errors("fleet add-gateway"):
        state = load_state(cfg.fleet.state_file)
        state.groups.setdefault(group, Group()).gateways[gateway_id] = public_key.strip()
        if ack_key is not None:
            state.ack_keys[gateway_id] = ack_key.strip()
        save_state(cfg.fleet.state_file, state)


@fleet.command("enroll")
@click.argument("user_id")
@click.option("--group", "groups", multiple=True, required=True, help="door group (repeatable)")
@click.option("--card", default=None, help="access-card number carried (encrypted) with them")
@config_option
def fleet_enroll(
    user_id: str, groups: tuple[str, ...], card: str | None, config_path: Path | None
) -> None:
    """A person of the master gallery may pass the doors of GROUP (then run `fleet publish`)."""
    from edge_gate.fleet.admin import load_state, save_state
    from edge_gate.gallery.store import store_from_config

    cfg = load_or_exit(config_path)
    check_user_id(user_id)
    with exit_on_errors("fleet enroll"):
        if store_from_config(cfg.gallery).load().get(user_id) is None:
            fail(f"{user_id} is not in the master gallery", command="fleet enroll")
        state = load_state(cfg.fleet.state_file)
        for g in groups:
            state.group(g).members[user_id] = card
        save_state(cfg.fleet.state_file, state)


@fleet.command("revoke")
@click.argument("user_id")
@click.option("--group", "groups", multiple=True, help="only these groups [default: all]")
@click.option("--publish/--no-publish", default=True, help="publish the change at once")
@json_option
@config_option
def fleet_revoke(
    user_id: str,
    groups: tuple[str, ...],
    publish: bool,
    as_json: bool,
    config_path: Path | None,
) -> None:
    """A person leaves door groups; by default the change is published at once."""
    from edge_gate.fleet.admin import load_state, save_state

    cfg = load_or_exit(config_path)
    check_user_id(user_id)
    with exit_on_errors("fleet revoke"):
        state = load_state(cfg.fleet.state_file)
        names = groups or tuple(state.groups)
        touched = [g for g in names if state.group(g).members.pop(user_id, "absent") != "absent"]
        if not touched:
            fail(
                f"{user_id} is in none of {', '.join(names) or 'no groups'}", command="fleet revoke"
            )
        save_state(cfg.fleet.state_file, state)
        if publish:
            _publish(cfg, tuple(touched), force=False, as_json=as_json)


@fleet.command("publish")
@click.option("--group", "groups", multiple=True, help="only these groups [default: all]")
@click.option("--force", is_flag=True, help="publish a new version even if nothing changed")
@json_option
@config_option
def fleet_publish(
    groups: tuple[str, ...], force: bool, as_json: bool, config_path: Path | None
) -> None:
    """Publish the next version of each changed door group (full bundle + delta)."""
    cfg = load_or_exit(config_path)
    with exit_on_errors("fleet publish"):
        _publish(cfg, groups, force=force, as_json=as_json)


def _publish(cfg: EdgeGateConfig, groups: tuple[str, ...], *, force: bool, as_json: bool) -> None:
    from edge_gate.fleet.admin import load_state, plan_publish
    from edge_gate.fleet.keys import load_signing_key
    from edge_gate.fleet.link import FleetLink
    from edge_gate.fleet.publish import publish_plan
    from edge_gate.gallery.store import store_from_config

    state = load_state(cfg.fleet.state_file)
    key = load_signing_key(cfg.fleet.signing_key_file)
    master = store_from_config(cfg.gallery).load()
    names = groups or tuple(sorted(state.groups))
    plans = []
    for name in names:
        plan = plan_publish(
            state,
            name,
            master,
            key,
            created=time.time(),
            chunk_bytes=cfg.fleet.chunk_kib * 1024,
            force=force,
        )
        if plan is not None:
            plans.append(plan)
        elif not as_json:
            click.echo(f"{name}: unchanged (version {state.group(name).published.version})")
    if not plans:
        return
    link = FleetLink(cfg.mqtt, role=ADMIN_ROLE)
    link.start()
    try:
        if not link.wait_ready(cfg.fleet.publish_timeout_s):
            fail(f"no connection to {cfg.mqtt.host}:{cfg.mqtt.port}", command="fleet publish")
        for plan in plans:
            rep = publish_plan(
                link,
                _topics(cfg),
                state,
                cfg.fleet.state_file,
                plan,
                timeout_s=cfg.fleet.publish_timeout_s,
            )
            if as_json:
                echo_json(
                    {
                        "group": rep.group,
                        "version": rep.version,
                        "chunks": rep.chunks,
                        "bytes_full": rep.bytes_full,
                        "bytes_delta": rep.bytes_delta,
                        "seconds": round(rep.seconds, 3),
                        "published_at": time.time(),
                    }
                )
            else:
                click.echo(
                    f"{rep.group}: version {rep.version} published ({rep.bytes_full} bytes in "
                    f"{rep.chunks} chunks, delta {rep.bytes_delta} bytes, {rep.seconds:.2f} s)"
                )
    finally:
        link.stop()


@fleet.command("status")
@click.option("--wait-s", type=click.FloatRange(0.1, 60), default=2.0, show_default=True)
@json_option
@config_option
def fleet_status(wait_s: float, as_json: bool, config_path: Path | None) -> None:
    """Per gateway: applied version per group, lag, online state, last event, camera and door.

    Acknowledgements and health messages are checked against the gateway's registered ack
    key; one that is unsigned, forged or replayed is flagged and never counted as applied.
    Exit 1 when a gateway is behind or a report is not trusted."""
    from edge_gate.fleet.admin import load_state
    from edge_gate.fleet.link import FleetLink
    from edge_gate.fleet.report import load_seen, save_seen, seen_path
    from edge_gate.fleet.status import collect_reports, filters, format_row, status_rows, untrusted

    cfg = load_or_exit(config_path)
    topics = _topics(cfg)
    with exit_on_errors("fleet status"):
        state = load_state(cfg.fleet.state_file)
        seen = load_seen(seen_path(cfg.fleet.state_file))
        link = FleetLink(cfg.mqtt, role=ADMIN_ROLE, subscriptions=filters(topics))
        link.start()
        try:
            if not link.wait_ready(10.0):
                fail(f"no connection to {cfg.mqtt.host}:{cfg.mqtt.port}", command="fleet status")
            reports = collect_reports(link, topics, wait_s)
        finally:
            link.stop()
        rows = status_rows(state, reports, seen)
        save_seen(seen_path(cfg.fleet.state_file), seen)
    for row in rows:
        if as_json:
            echo_json(row)
        else:
            click.echo(format_row(row))
    if any(row["lag"] > 0 or untrusted(row) for row in rows):
        raise SystemExit(1)


@fleet.command("follow")
@click.option("--run-for", type=click.FloatRange(0.1), default=None, help="stop after N seconds")
@config_option
def fleet_follow(run_for: float | None, config_path: Path | None) -> None:
    """Gateway sidecar: apply the bundles of the [fleet] groups to the local gallery."""
    from edge_gate.audit.signing import EventSigner
    from edge_gate.audit.trail import AuditTrail
    from edge_gate.fleet.follower import Follower
    from edge_gate.fleet.keys import load_ack_key, load_fleet_public_key, load_gateway_key
    from edge_gate.fleet.link import FleetLink, run_until
    from edge_gate.gallery.store import store_from_config

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    cfg = load_or_exit(config_path)
    if not cfg.fleet.groups:
        fail("fleet.groups is empty: nothing to follow", 78, command="fleet follow")
    topics = _topics(cfg)
    gw = cfg.mqtt.gateway_id
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with exit_on_errors("fleet follow", ((SecretFileError, 78),)):
        trail = AuditTrail.from_config(cfg.mqtt)
        link = FleetLink(
            cfg.mqtt,
            role="fleet",
            subscriptions=tuple(topics.group_filter(g) for g in cfg.fleet.groups),
            will=(topics.follower(gw), b"offline"),
            online=(topics.follower(gw), b"online"),
        )
        follower = Follower(
            gateway_id=gw,
            groups=cfg.fleet.groups,
            topics=topics,
            fleet_key=load_fleet_public_key(cfg.fleet.public_key_file),
            gateway_key=load_gateway_key(cfg.fleet.gateway_key_file),
            store=store_from_config(cfg.gallery),
            applied_path=cfg.fleet.applied_file,
            emit=trail.emit,
            ack=lambda topic, body: link.publish_nowait(topic, body, retain=True),
            signer=EventSigner(load_ack_key(cfg.fleet.ack_key_file)),
        )
        if run_for is not None:
            timer = threading.Timer(run_for, stop.set)
            timer.daemon = True
            timer.start()
        link.start()
        follower.acknowledge()  # sent once connected: status sees a restarted gateway
        try:
            run_until(link, follower.handle, stop)
        finally:
            link.stop()
            trail.close()
