"""Build one door's parts from the config and hand them to the daemon (composition).

Order matters and is the start-up order the daemon reports to systemd: the audit trail first
(:func:`open_audit`, so a failure below can still be recorded), then :func:`build_door`: audit
settings checked, models verified and loaded, gallery decrypted and verified, relay handshake,
then the (not yet started) capture, relay worker and pipeline threads. Every step fails with a
clear :class:`~edge_gate.errors.EdgeGateError` and leaves the door locked.

The daemon only sees the Protocols of :mod:`edge_gate.service.ports`; a test gives it other real
parts with its own ``Composer``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from edge_gate.audit.connection import check_settings as check_mqtt_settings
from edge_gate.audit.signing import EventSigner
from edge_gate.audit.trail import AuditTrail
from edge_gate.capture.frame import Frame
from edge_gate.capture.latest import LatestFrame
from edge_gate.capture.thread import CaptureThread
from edge_gate.config import EdgeGateConfig
from edge_gate.config.osdp import CP_CREDENTIAL, PD_CREDENTIAL
from edge_gate.decision.factors import DoorMode, FactorParams
from edge_gate.decision.policy import DecisionPolicy, PolicyParams
from edge_gate.door.client import RelayClient
from edge_gate.door.counter import CounterStore
from edge_gate.door.keys import load_relay_key
from edge_gate.door.transport import SerialChannel
from edge_gate.door.worker import RelayWorker, ResultCallback
from edge_gate.errors import RelayError, SecretFileError
from edge_gate.fleet.keys import load_ack_key
from edge_gate.gallery.gates import DOOR_LIMITS
from edge_gate.liveness.estimator import LivenessEstimator
from edge_gate.osdp.door import OsdpDoor
from edge_gate.osdp.keys import load_scbk, store_scbk
from edge_gate.osdp.link import SerialLink
from edge_gate.osdp.messages import CardRead, KeypadEntry, LinkState, ReaderEvent
from edge_gate.osdp.panel import OsdpPanel, PdSpec
from edge_gate.osdp.peripheral import OsdpPeripheral
from edge_gate.service.components import GalleryMatcher, gallery_stamp, load_gallery, nobody
from edge_gate.service.door_actions import DoorActions
from edge_gate.service.frame_processor import FrameProcessor
from edge_gate.service.notify import Notifier
from edge_gate.service.panel_reader import PanelReader
from edge_gate.service.pipeline_thread import PipelineThread
from edge_gate.service.ports import CameraFeed, DecisionLoop, DoorActuator, EventSink
from edge_gate.service.second_factor import ReaderInbox, SecondFactorStage
from edge_gate.service.snapshots import SnapshotWriter
from edge_gate.threads import Heartbeat
from edge_gate.tracking.tracker import Tracker
from edge_gate.vision.pipeline import FacePipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfigGallery:
    """The gallery named by the config, for the embedder the door runs."""

    cfg: EdgeGateConfig
    embedder_id: str
    embedding_size: int

    def load(self) -> GalleryMatcher:
        return load_gallery(self.cfg, self.embedder_id, self.embedding_size)

    def nobody(self) -> GalleryMatcher:
        return nobody(self.cfg, self.embedding_size)

    def stamp(self) -> object:
        return gallery_stamp(self.cfg)


@dataclass
class DoorParts:
    """Everything one door runs, built and verified but not started."""

    actions: DoorActions
    pipeline: DecisionLoop
    door: DoorActuator
    camera: CameraFeed
    gallery: ConfigGallery
    matcher: GalleryMatcher
    gallery_stamp: object  # taken before the load: a change during it is picked up next poll
    embedder_id: str


class Composer(Protocol):
    def __call__(
        self,
        cfg: EdgeGateConfig,
        events: EventSink,
        stop: threading.Event,
        notifier: Notifier,
        snapshots: SnapshotWriter | None,
    ) -> DoorParts: ...


def open_audit(cfg: EdgeGateConfig) -> AuditTrail:
    """The audit trail, started (its outbox keeps events while the broker is away).

    A gateway that follows the fleet signs its health message with its fleet ack key, so
    ``fleet status`` on the admin station can trust the camera and door state it reads.
    Without that key the door still runs (health is telemetry); status shows it untrusted.
    """
    signer = None
    if cfg.fleet.groups:
        try:
            signer = EventSigner(load_ack_key(cfg.fleet.ack_key_file))
        except SecretFileError as e:
            log.error("fleet.ack_key_unavailable", extra={"EG_REASON": str(e)})
    audit = AuditTrail.from_config(cfg.mqtt, health_signer=signer)
    audit.start()
    return audit


def policy_params(cfg: EdgeGateConfig) -> PolicyParams:
    p = cfg.policy
    return PolicyParams(
        threshold=cfg.gallery.threshold,
        margin=cfg.gallery.margin,
        k_frames=p.k_frames,
        n_frames=p.n_frames,
        window_s=p.window_s,
        cooldown_s=p.cooldown_s,
        require_live=cfg.liveness.enabled,
        liveness_timeout_s=p.liveness_timeout_s,
    )


def factor_params(cfg: EdgeGateConfig) -> FactorParams:
    p = cfg.policy
    return FactorParams(
        mode=DoorMode(p.mode),
        card_threshold=p.card_threshold,
        k_frames=p.k_frames,
        n_frames=p.n_frames,
        timeout_s=p.second_factor_timeout_s,
        require_live=cfg.liveness.enabled,
    )


def build_processor(
    cfg: EdgeGateConfig,
    pipe: FacePipeline,
    matcher: GalleryMatcher,
    factors: SecondFactorStage | None = None,
) -> FrameProcessor:
    """The per-frame decision path of a door (also what the pipeline benchmark measures)."""
    liveness = LivenessEstimator.from_config(cfg.liveness) if cfg.liveness.enabled else None
    policy = DecisionPolicy(policy_params(cfg))
    return FrameProcessor(
        pipe, Tracker(), liveness, matcher, policy, DOOR_LIMITS, cfg.policy.max_faces, factors
    )


def build_factors(
    cfg: EdgeGateConfig, matcher: GalleryMatcher, inbox: ReaderInbox
) -> SecondFactorStage:
    """The door mode of ``[policy]`` (and its weekly schedule) on the reader's inputs."""
    return SecondFactorStage(
        factor_params(cfg),
        inbox,
        matcher.credentials,
        tag_key=matcher.card_tag_key,
        schedule=cfg.policy.mode_windows(),
    )


def open_relay(
    cfg: EdgeGateConfig, on_result: ResultCallback, stop: threading.Event
) -> RelayWorker:
    """Key, counter, port and a verified handshake; the worker is not started."""
    key = load_relay_key(cfg.relay.key_file)
    counter = CounterStore(cfg.relay.counter_file)
    counter.check_writable()  # every unlock must be recorded first: find out now
    channel = SerialChannel(cfg.relay.port, cfg.relay.baudrate)
    client = RelayClient(channel, key, counter, timeout_s=cfg.relay.timeout_s)
    hello = client.handshake()
    if not hello.ok:
        channel.close()
        raise RelayError(f"relay handshake on {cfg.relay.port} failed: {hello.reason}")
    return RelayWorker(client, on_result=on_result, stop=stop)


def open_osdp_door(
    cfg: EdgeGateConfig,
    actions: DoorActions,
    inbox: ReaderInbox,
    stop: threading.Event,
    key: bytes,
) -> OsdpDoor:
    """``[osdp_cp]``: the strike on a PD output; pulses only under Secure Channel, after ACK.
    Card reads and keys go to ``inbox`` (the door mode), link changes to ``actions``."""
    c = cfg.osdp_cp

    def reader_event(ev: ReaderEvent) -> None:
        if isinstance(ev, LinkState):
            log.warning(
                "osdp.link",
                extra={"EG_OSDP_ADDRESS": ev.address, "EG_STATUS": _link_text(ev)},
            )
            actions.on_reader_link(ev)
        elif isinstance(ev, CardRead | KeypadEntry):
            inbox.put(ev, time.monotonic())

    panel = OsdpPanel(
        [PdSpec(c.address, SerialLink(c.port, c.baudrate), key)],
        on_event=reader_event,
        install_mode=c.install_mode,
        stop=stop,
    )
    return OsdpDoor(
        panel,
        c.address,
        output_no=c.output_no,
        pulse_ms=c.pulse_ms,
        reply_timeout_s=c.reply_timeout_s,
        on_result=actions.on_unlocked,
        stop=stop,
    )


def open_panel_reader(
    cfg: EdgeGateConfig, actions: DoorActions, stop: threading.Event
) -> PanelReader:
    """``[osdp_pd]``: a reader of the building's panel (Secure Channel enforced; SCBK-D once in
    install mode without a key), with the ``[relay]`` door for the panel's osdp_OUT when
    ``apply_output`` is set (handshake verified now)."""
    c = cfg.osdp_pd
    scbk = (
        None
        if c.install_mode and not c.scbk_file.exists()
        else load_scbk(PD_CREDENTIAL, c.scbk_file)
    )
    reader = PanelReader(
        actions.emit,
        reader_no=c.reader_no,
        unlock_expiry_s=cfg.policy.unlock_expiry_s,
        stop=stop,
    )
    relay = open_relay(cfg, reader.on_relay_result, stop) if c.apply_output else None
    pd = OsdpPeripheral(
        SerialLink(c.port, c.baudrate),
        c.address,
        scbk,
        on_command=reader.on_command,
        on_keyset=lambda key: store_scbk(c.scbk_file, key),
        on_link=reader.on_link,
        install_mode=c.install_mode,
        stop=stop,
    )
    reader.attach(pd, relay)
    return reader


def _link_text(state: LinkState) -> str:
    if state.secure:
        return "secure"
    return "online_insecure" if state.online else "offline"


def build_door(
    cfg: EdgeGateConfig,
    events: EventSink,
    stop: threading.Event,
    notifier: Notifier,
    snapshots: SnapshotWriter | None,
) -> DoorParts:
    """Every part of one door from ``cfg``, verified, in start-up order (see module doc)."""
    notifier.status("starting: checking audit trail settings")
    check_mqtt_settings(cfg.mqtt)
    notifier.status("starting: verifying and loading models")
    pipe = FacePipeline.from_config(cfg.vision)
    notifier.status("starting: decrypting gallery")
    gallery = ConfigGallery(cfg, pipe.embedder_id, pipe.embedding_size)
    stamp = gallery.stamp()
    matcher = gallery.load()
    actions = DoorActions(cfg, events, notifier, snapshots=snapshots)
    actions.use_credentials(matcher.credentials, matcher.card_tag_key)
    door: DoorActuator
    factors: SecondFactorStage | None = None
    if cfg.osdp_pd.enabled:  # face mode only (config check: the panel owns cards and PINs)
        notifier.status("starting: OSDP reader of the panel")
        reader = open_panel_reader(cfg, actions, stop)
        actions.connect(reader, reporter=reader)
        door = reader
    elif cfg.osdp_cp.enabled:
        notifier.status("starting: OSDP control panel")
        scbk = load_scbk(CP_CREDENTIAL, cfg.osdp_cp.scbk_file)
        inbox = ReaderInbox(cfg.policy.pin_timeout_s)
        factors = build_factors(cfg, matcher, inbox)
        door = open_osdp_door(cfg, actions, inbox, stop, scbk)
        actions.connect(door)
    else:  # face mode only (config check: a card/PIN mode needs [osdp_cp])
        notifier.status("starting: relay handshake")
        door = open_relay(cfg, actions.on_unlocked, stop)
        actions.connect(door)
    slot: LatestFrame[Frame] = LatestFrame()
    capture = CaptureThread.from_config(
        cfg.camera,
        slot,
        on_lost=actions.on_camera_lost,
        on_restored=actions.on_camera_restored,
        stop_event=stop,
    )
    pipeline = PipelineThread(
        slot,
        build_processor(cfg, pipe, matcher, factors),
        on_decision=actions.on_decision,
        on_factor=actions.on_factor,
        on_error=actions.on_pipeline_error,
        stop=stop,
        max_fps=cfg.policy.max_fps,
        heartbeat=Heartbeat(),
    )
    return DoorParts(actions, pipeline, door, capture, gallery, matcher, stamp, pipe.embedder_id)
