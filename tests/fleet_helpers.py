"""Shared set-up for the fleet tests: a master gallery, an admin state, gateway keys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_gate.audit.outbox import Outbox
from edge_gate.fleet.admin import FleetState, Group
from edge_gate.fleet.keys import raw_public
from edge_gate.gallery.keyfile import KeyRing, load_keyring_file, new_key, write_keyring
from edge_gate.gallery.store import GalleryStore

DIM = 32


def templates(i: int, n: int = 2) -> np.ndarray:
    v = np.random.default_rng(1000 + i).standard_normal((n, DIM)).astype(np.float32)
    out: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def new_store(directory: Path) -> GalleryStore:
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "gallery.key"
    if not key.exists():
        write_keyring(key, KeyRing((new_key(),)))
    store = GalleryStore(directory / "gallery.db", None, load_keyring_file(key))
    if not store.exists():
        store.create()
    return store


@dataclass
class Master:
    store: GalleryStore
    people: dict[str, str]  # name -> user id
    signing_key: Ed25519PrivateKey


def master_gallery(directory: Path, names: list[str]) -> Master:
    store = new_store(directory)
    ids = store.enroll_many([(n, templates(i)) for i, n in enumerate(names)], "m")
    return Master(store, dict(zip(names, ids, strict=True)), Ed25519PrivateKey.generate())


def fleet_state(
    gateways: dict[str, X25519PrivateKey], members: list[str], group: str = "lobby"
) -> FleetState:
    g = Group(
        gateways={gw: raw_public(k.public_key()) for gw, k in gateways.items()},
        members=dict.fromkeys(members),
    )
    return FleetState({group: g})


def outbox_events(path: Path) -> list[dict[str, object]]:
    with Outbox(path, 1000) as box:
        return [json.loads(e.payload) for e in box.pending()]
