"""Produce the relay protocol v1 known-answer vectors straight from the spec tables.

Deliberately independent of ``edge_gate.door``: only struct, hmac and binascii, written from
deploy/relay-protocol.md, so the tests compare the codec against a second implementation.
Run: ``python tests/vectors/relay/make_vectors.py > tests/vectors/relay/vectors.json``
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import struct

KEY = bytes(range(32))
GW_NONCE = bytes(range(16))
RELAY_NONCE = bytes(range(0xA0, 0xB0))
STATUS_NONCE = bytes(range(0x10, 0x20))


def cobs(data: bytes) -> bytes:
    out, block = bytearray(), bytearray()
    for b in data + b"\x00":
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block.clear()
        else:
            block.append(b)
    return bytes(out)


def wire(body: bytes) -> bytes:
    crc = struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)
    return b"\x00" + cobs(body + crc) + b"\x00"


def body(msg_type: int, fields: bytes, maced: bool) -> bytes:
    signed = bytes([1, msg_type]) + fields
    return signed + hmac.new(KEY, signed, hashlib.sha256).digest() if maced else signed


def vector(
    name: str, msg_type: int, fields: dict[str, object], packed: bytes, maced: bool
) -> dict[str, object]:
    b = body(msg_type, packed, maced)
    return {
        "name": name,
        "type": msg_type,
        "fields": fields,
        "body_hex": b.hex(),
        "wire_hex": wire(b).hex(),
        "expect": "ok",
    }


def main() -> None:
    vectors = [
        vector("hello", 0x01, {"gw_nonce": GW_NONCE.hex()}, GW_NONCE, False),
        vector(
            "challenge",
            0x02,
            {
                "gw_nonce": GW_NONCE.hex(),
                "relay_nonce": RELAY_NONCE.hex(),
                "ttl_ms": 2000,
                "relay_counter": 41,
            },
            GW_NONCE + RELAY_NONCE + struct.pack(">HQ", 2000, 41),
            True,
        ),
        vector(
            "unlock",
            0x03,
            {"relay_nonce": RELAY_NONCE.hex(), "counter": 42, "pulse_ms": 1500},
            RELAY_NONCE + struct.pack(">QH", 42, 1500),
            True,
        ),
        vector(
            "ack",
            0x04,
            {
                "relay_nonce": RELAY_NONCE.hex(),
                "counter": 42,
                "code": 0,
                "pulse_ms": 1500,
                "relay_counter": 42,
            },
            RELAY_NONCE + struct.pack(">QBHQ", 42, 0, 1500, 42),
            True,
        ),
        vector(
            "nack_counter",
            0x05,
            {
                "relay_nonce": RELAY_NONCE.hex(),
                "counter": 41,
                "code": 4,
                "pulse_ms": 0,
                "relay_counter": 42,
            },
            RELAY_NONCE + struct.pack(">QBHQ", 41, 4, 0, 42),
            True,
        ),
        vector("status_req", 0x06, {"gw_nonce": STATUS_NONCE.hex()}, STATUS_NONCE, False),
        vector(
            "status",
            0x07,
            {
                "gw_nonce": STATUS_NONCE.hex(),
                "door_open": True,
                "tamper": False,
                "energised": True,
                "relay_counter": 42,
            },
            STATUS_NONCE + struct.pack(">BQ", 0x05, 42),
            True,
        ),
    ]
    unlock = bytes.fromhex(str(vectors[2]["body_hex"]))
    bad_mac = unlock[:-1] + bytes([unlock[-1] ^ 0x01])
    bad_version = bytes([2]) + unlock[1:]
    negatives = [
        {
            "name": "unlock_mac_bit_flipped",
            "body_hex": bad_mac.hex(),
            "wire_hex": wire(bad_mac).hex(),
            "expect": "bad_mac",
        },
        {
            "name": "unlock_version_2",
            "body_hex": bad_version.hex(),
            "wire_hex": wire(bad_version).hex(),
            "expect": "bad_version",
        },
        {
            "name": "unlock_truncated",
            "body_hex": unlock[:-1].hex(),
            "wire_hex": wire(unlock[:-1]).hex(),
            "expect": "bad_length",
        },
        {
            "name": "unlock_crc_damaged",
            "body_hex": unlock.hex(),
            "wire_hex": (wire(unlock)[:-2] + bytes([wire(unlock)[-2] ^ 0x10]) + b"\x00").hex(),
            "expect": "bad_crc",
        },
    ]
    doc = {
        "protocol_version": 1,
        "key_hex": KEY.hex(),
        "note": "bodies exclude the CRC; wire = 00 COBS(body || crc32_be(body)) 00",
        "vectors": vectors,
        "negative": negatives,
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
