"""What a gateway applied per door group: version and members (JSON, 0600, atomic).

The version is the rollback floor: a bundle of an older version is refused. It is written
after the gallery commit, so a crash in between leaves the floor one version behind; the
retained bundle is then applied again, which changes nothing (the upsert skips unchanged
people). The members tell which people a group brought, so a person leaves the gallery only
when no followed group lists them any more (local enrollments are never touched).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edge_gate.errors import GalleryTamperedError
from edge_gate.fsutil import atomic_write, read_private_file

FORMAT = "edge-gate-fleet-applied"
MAX_BYTES = 64 << 20


@dataclass
class GroupState:
    version: int = 0
    applied_at: float | None = None
    members: set[str] = field(default_factory=set)


@dataclass
class AppliedState:
    groups: dict[str, GroupState] = field(default_factory=dict)

    def group(self, name: str) -> GroupState:
        return self.groups.setdefault(name, GroupState())

    def members_elsewhere(self, name: str) -> set[str]:
        out: set[str] = set()
        for other, st in self.groups.items():
            if other != name:
                out |= st.members
        return out


def load_applied(path: Path) -> AppliedState:
    if not Path(path).exists():
        return AppliedState()
    try:
        raw = json.loads(read_private_file(path, MAX_BYTES))
        if raw.get("format") != FORMAT:
            raise ValueError("format")
        groups = {
            str(g): GroupState(
                int(v["version"]),
                None if v.get("applied_at") is None else float(v["applied_at"]),
                {str(m) for m in v["members"]},
            )
            for g, v in raw["groups"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        # a damaged floor must not silently become 0 (that would re-open rollbacks)
        raise GalleryTamperedError(f"{path}: unreadable fleet state: {type(e).__name__}") from e
    return AppliedState(groups)


def save_applied(path: Path, state: AppliedState) -> None:
    data = {
        "format": FORMAT,
        "groups": {
            g: {"version": st.version, "applied_at": st.applied_at, "members": sorted(st.members)}
            for g, st in sorted(state.groups.items())
        },
    }
    atomic_write(path, json.dumps(data, separators=(",", ":")).encode("utf-8"))
