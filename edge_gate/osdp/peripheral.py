"""edge-gate as an OSDP peripheral device (a reader of a building's panel): report a card read
for a granted person, apply the panel's output/LED/buzzer commands through a callback.

Secure by default: with an SCBK libosdp runs with ``EnforceSecure`` (the panel must open a
Secure Channel with that key; nothing is accepted in plain text) and :meth:`report_card`
sends nothing unless the Secure Channel is up. ``install_mode`` without a stored key accepts a
session with SCBK-D once, and the panel's osdp_KEYSET is handed to ``on_keyset`` (which stores
it, 0600) before it is acknowledged.

libosdp calls the command callback on its refresh thread with its lock held: ``on_command``
must be quick (queue the unlock, do not wait for it) and returns True to ACK, False to NAK.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import osdp

from edge_gate.osdp.cards import CardCredential
from edge_gate.osdp.convert import card_event, keypad_event, panel_command
from edge_gate.osdp.messages import LinkState, PanelCommand
from edge_gate.threads import ServiceThread

log = logging.getLogger(__name__)

CommandCallback = Callable[[PanelCommand], bool]
KeysetCallback = Callable[[bytes], None]
LinkCallback = Callable[[LinkState], None]

CAPABILITIES = [
    (osdp.Capability.OutputControl, 1, 1),
    (osdp.Capability.LEDControl, 1, 1),
    (osdp.Capability.AudibleControl, 1, 1),
    (osdp.Capability.CardDataFormat, 1, 1),
]


class OsdpPeripheral(ServiceThread):
    """One PD on ``channel`` at ``address``."""

    def __init__(
        self,
        channel: osdp.Channel,
        address: int,
        scbk: bytes | None,
        *,
        on_command: CommandCallback,
        on_keyset: KeysetCallback | None = None,
        on_link: LinkCallback | None = None,
        install_mode: bool = False,
        stop: threading.Event | None = None,
        poll_s: float = 0.05,
        log_level: int = osdp.LogLevel.Emergency,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("osdp-pd", stop=stop)
        if scbk is None and not install_mode:
            raise ValueError("an OSDP PD needs its SCBK unless it is in install mode")
        self.address = address
        self._channel = channel
        self._scbk = scbk
        self._on_command = on_command
        self._on_keyset = on_keyset
        self._on_link = on_link
        self._install_mode = install_mode and scbk is None
        self._poll_s = poll_s
        self._log_level = log_level
        self._clock = clock
        self._pd: osdp.PeripheralDevice | None = None
        self._state = LinkState(address, online=False, secure=False)
        self.cards_reported = 0

    @property
    def in_install_mode(self) -> bool:
        return self._install_mode

    def start(self) -> None:
        if self._pd is None:
            flags = (
                [osdp.LibFlag.InstallMode] if self._install_mode else [osdp.LibFlag.EnforceSecure]
            )
            info = osdp.PDInfo(self.address, self._channel, scbk=self._scbk, flags=flags)
            self._pd = osdp.PeripheralDevice(
                info,
                osdp.PDCapabilities(CAPABILITIES),
                log_level=self._log_level,
                command_handler=self._command,
            )
            self._pd.start()
        super().start()

    @property
    def link(self) -> LinkState:
        return self._state

    # -- to the panel -----------------------------------------------------------------------

    def report_card(self, card: CardCredential, reader_no: int = 0) -> bool:
        """Queue one card read for the panel; False (nothing sent) without a Secure Channel."""
        pd = self._pd
        if pd is None or self.stopping or not pd.is_sc_active():
            return False
        ok = bool(pd.submit_event(card_event(card, reader_no)))
        if ok:
            self.cards_reported += 1
        return ok

    def report_keys(self, keys: str, reader_no: int = 0) -> bool:
        pd = self._pd
        if pd is None or self.stopping or not pd.is_sc_active():
            return False
        return bool(pd.submit_event(keypad_event(keys, reader_no)))

    # -- from the panel (libosdp's refresh thread, its lock held) ---------------------------

    def _command(self, cmd: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        if cmd.get("command") == osdp.Command.Keyset:
            return (0 if self._keyset(cmd) else -1), None
        try:
            ok = self._on_command(panel_command(cmd))
        except Exception:
            log.exception("osdp.command_callback_error")
            ok = False
        return (0 if ok else -1), None

    def _keyset(self, cmd: dict[str, Any]) -> bool:
        key = cmd.get("data")
        if self._on_keyset is None or not isinstance(key, bytes) or len(key) != 16:
            return False
        try:
            self._on_keyset(key)
        except Exception:
            log.exception("osdp.keyset_store_failed")
            return False
        log.warning("osdp.key_installed", extra={"EG_OSDP_ADDRESS": self.address})
        return True

    # -- the PD thread ----------------------------------------------------------------------

    def run(self) -> None:
        pd = self._pd
        if pd is None:
            return
        try:
            while not self.stopping:
                self.heartbeat.beat()
                while pd.get_command(timeout=-1) is not None:
                    pass  # libosdp also queues every command; handled in _command already
                state = LinkState(self.address, bool(pd.is_online()), bool(pd.is_sc_active()))
                if state != self._state:
                    self._state = state
                    if self._on_link is not None:
                        try:
                            self._on_link(state)
                        except Exception:
                            log.exception("osdp.callback_error")
                self.wait(self._poll_s)
        finally:
            try:
                pd.teardown()
            except Exception:
                log.exception("osdp.teardown_failed")
            close = getattr(self._channel, "close", None)
            if callable(close):
                close()
