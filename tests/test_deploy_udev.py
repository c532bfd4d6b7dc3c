"""udev/99-edge-gate.rules: well-formed rules giving stable, group-owned device names."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_gate.config import EdgeGateConfig

RULES = Path(__file__).resolve().parent.parent / "udev" / "99-edge-gate.rules"

MATCH_KEYS = {
    "ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM", "SUBSYSTEMS",
    "DRIVER", "DRIVERS", "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TAG", "TAGS", "TEST",
    "PROGRAM", "RESULT",
}  # fmt: skip
ASSIGN_KEYS = {
    "NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL", "ENV", "TAG",
    "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS",
}  # fmt: skip
NEEDS_ATTR = {"ATTR", "ATTRS", "ENV", "SYSCTL", "CONST", "IMPORT"}
MAY_HAVE_ATTR = NEEDS_ATTR | {"TEST", "RUN", "SECLABEL"}

_PAIR = re.compile(
    r'\s*(?P<key>[A-Z_]+)(?:\{(?P<attr>[^{}"]+)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>[^"]*)"\s*'
)


@dataclass(frozen=True)
class Pair:
    key: str
    attr: str | None
    op: str
    value: str


def parse_rule(line: str) -> list[Pair]:
    """Split one rule into key/op/value pairs, rejecting anything udev would not accept."""
    pairs: list[Pair] = []
    pos = 0
    while pos < len(line):
        m = _PAIR.match(line, pos)
        assert m, f"unparsable at column {pos}: {line[pos:]!r}"
        pair = Pair(m["key"], m["attr"], m["op"], m["value"])
        if pair.op in ("==", "!="):
            assert pair.key in MATCH_KEYS, f"{pair.key} cannot be matched"
        else:
            assert pair.key in ASSIGN_KEYS, f"{pair.key} cannot be assigned"
        if pair.key in NEEDS_ATTR:
            assert pair.attr is not None, f"{pair.key} needs {{attribute}}"
        elif pair.attr is not None:
            assert pair.key in MAY_HAVE_ATTR, f"{pair.key} takes no {{attribute}}"
        pairs.append(pair)
        pos = m.end()
        if pos < len(line):
            assert line[pos] == ",", f"missing comma: {line!r}"
            pos += 1
            assert line[pos:].strip(), f"trailing comma: {line!r}"
    return pairs


def rules() -> list[list[Pair]]:
    text = RULES.read_text(encoding="utf-8")
    assert "\\\n" not in text, "keep one rule per line"
    return [
        parse_rule(line)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _rule_for(symlink: str) -> list[Pair]:
    found = [r for r in rules() if Pair("SYMLINK", None, "+=", symlink) in r]
    assert len(found) == 1, f"expected exactly one rule adding {symlink}"
    return found[0]


def test_every_rule_parses() -> None:
    """Each non-comment line is a comma-separated list of valid udev key/op/value pairs."""
    parsed = rules()
    assert len(parsed) == 2
    assert all(any(p.op in ("==", "!=") for p in r) for r in parsed), "a rule without a match"


def test_relay_rule_pins_one_usb_serial_adapter() -> None:
    """The relay is a tty matched by USB vendor, product and serial, owned by edge-gate, 0660."""
    rule = _rule_for(Path(EdgeGateConfig().relay.port).name)
    matched = {(p.key, p.attr): p.value for p in rule if p.op == "=="}
    assert matched[("SUBSYSTEM", None)] == "tty"
    for attr in ("idVendor", "idProduct", "serial"):
        assert ("ATTRS", attr) in matched
    assert re.fullmatch(r"[0-9a-f]{4}", matched[("ATTRS", "idVendor")])
    assert re.fullmatch(r"[0-9a-f]{4}", matched[("ATTRS", "idProduct")])
    assert Pair("GROUP", None, "=", "edge-gate") in rule
    assert Pair("MODE", None, "=", "0660") in rule


def test_camera_rule_names_the_capture_node() -> None:
    """The camera is a video4linux node matched by its serial, owned by edge-gate, 0660."""
    rule = _rule_for("edge-gate-camera")
    matched = {(p.key, p.attr): p.value for p in rule if p.op == "=="}
    assert matched[("SUBSYSTEM", None)] == "video4linux"
    assert ("ENV", "ID_SERIAL") in matched
    assert matched[("ATTR", "index")] == "0"
    assert Pair("GROUP", None, "=", "edge-gate") in rule
    assert Pair("MODE", None, "=", "0660") in rule


def test_parser_rejects_malformed_rules() -> None:
    """The checker itself catches typos that udev would reject or silently misread."""
    for bad in (
        'SUBSYSTEM="tty", SYMLINK+="x"',  # assignment of a match-only key
        'SUBSYSTEM=="tty" GROUP="edge-gate"',  # missing comma
        'SUBSYSTEM=="tty", GROUP=edge-gate',  # unquoted value
        'ATTRS=="x"',  # ATTRS without {attribute}
        'SUBSYSTEM=="tty",',  # trailing comma
    ):
        with pytest.raises(AssertionError):
            parse_rule(bad)


@pytest.mark.skipif(shutil.which("udevadm") is None, reason="udevadm not installed")
def test_udevadm_verify_when_available() -> None:
    """`udevadm verify` (systemd ≥ 254) accepts the file; older udevadm lacks the verb."""
    help_text = subprocess.run(
        ["udevadm", "--help"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    if "verify" not in help_text:
        pytest.skip("this udevadm has no verify verb")
    proc = subprocess.run(
        ["udevadm", "verify", str(RULES)], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
