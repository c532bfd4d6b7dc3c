"""Random sequences of store operations agree with a plain dict model (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_gate.gallery.keyfile import KeyRing, load_keyring_file, new_key, write_keyring
from edge_gate.gallery.store import GalleryStore

DIM = 8
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp")),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("enroll"), names),
        st.tuples(st.just("revoke"), st.integers(0, 50)),
        st.tuples(st.just("rename"), st.integers(0, 50), names),
        st.tuples(st.just("rotate")),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None)
@given(sequence=ops)
def test_store_matches_model(sequence: list[tuple[object, ...]]) -> None:
    """After any sequence of enroll/revoke/rename/rotate the loaded gallery equals the model and
    the generation counts the writes (each example gets a fresh temporary directory)."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        key = d / "gallery.key"
        write_keyring(key, KeyRing((new_key(),)))
        store = GalleryStore(d / "gallery.db", None, load_keyring_file(key))
        store.create()
        model: dict[str, tuple[str, np.ndarray]] = {}
        writes = 0
        rng = np.random.default_rng(0)
        for op in sequence:
            if op[0] == "enroll":
                vecs = rng.standard_normal((2, DIM)).astype(np.float32)
                uid = store.enroll(str(op[1]), "m", vecs)
                model[uid] = (str(op[1]), vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
                writes += 1
            elif op[0] in ("revoke", "rename") and model:
                uid = sorted(model)[int(str(op[1])) % len(model)]
                if op[0] == "revoke":
                    store.revoke(uid)
                    del model[uid]
                else:
                    store.rename(uid, str(op[2]))
                    model[uid] = (str(op[2]), model[uid][1])
                writes += 1
            elif op[0] == "rotate":
                store.rotate(key)
                writes += 1
        loaded = GalleryStore(d / "gallery.db", None, load_keyring_file(key)).load()
        assert loaded.generation == writes
        assert {p.user_id: p.name for p in loaded.people} == {u: n for u, (n, _) in model.items()}
        for p in loaded.people:
            assert np.allclose(p.templates, model[p.user_id][1], atol=1e-6)
