"""``[osdp_cp]`` and ``[osdp_pd]``: OSDP v2 with Secure Channel, as control panel or as reader.

A door uses one way to open: the relay (default), ``[osdp_cp] enabled`` (edge-gate drives a PD's
output) or ``[osdp_pd] enabled`` (edge-gate reports card reads to a building's panel).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from edge_gate.config.base import NonEmptyPath, NonEmptyStr, Section

OsdpBaud = Literal[9600, 19200, 38400, 57600, 115200, 230400]
CP_CREDENTIAL = "osdp-cp.scbk"
PD_CREDENTIAL = "osdp-pd.scbk"


class _OsdpLink(Section):
    enabled: bool = Field(False, description="use this OSDP role for the door")
    port: NonEmptyStr = Field("/dev/edge-gate-osdp", description="RS-485 serial device")
    address: int = Field(1, ge=0, le=126, description="the PD's OSDP address on the bus")
    baudrate: OsdpBaud = Field(9600, description="serial speed (9600, 19200 … 230400)")
    install_mode: bool = Field(
        False,
        description="commissioning only: allow SCBK-D once to exchange the SCBK (osdp_KEYSET)",
    )


class OsdpCpConfig(_OsdpLink):
    scbk_file: NonEmptyPath = Field(
        Path("/etc/edge-gate/credentials/osdp-cp.scbk"),
        description="16-byte Secure Channel base key of the PD (credential osdp-cp.scbk), 0600",
    )
    output_no: int = Field(0, ge=0, le=255, description="the PD output wired to the door strike")
    pulse_ms: int = Field(1500, ge=100, le=10_000, description="strike pulse length")
    reply_timeout_s: float = Field(
        2.0, gt=0, le=10, description="wait this long for the PD's ACK of an osdp_OUT"
    )


class OsdpPdConfig(_OsdpLink):
    scbk_file: NonEmptyPath = Field(
        Path("/etc/edge-gate/credentials/osdp-pd.scbk"),
        description="16-byte Secure Channel base key (credential osdp-pd.scbk), 0600; written by "
        "an install-mode KEYSET",
    )
    reader_no: int = Field(0, ge=0, le=255, description="reader number in reported card reads")
    apply_output: bool = Field(
        False, description="pulse the [relay] door on the panel's osdp_OUT for output 0"
    )
