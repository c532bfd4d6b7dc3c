"""Whether a gateway takes a verified bundle header (pure core: no I/O, no clock).

A gateway applies only a bundle of one of its groups whose version is newer than what it
applied; an older version is a rollback (refused, with an event). The same version again is
what a retained message looks like after a reconnect: silently ignored. A delta applies only
on top of its base version; otherwise the gateway waits for the full (retained) bundle.
"""

from __future__ import annotations

import enum

__layer__ = "core"


class Admission(enum.StrEnum):
    APPLY = "apply"
    ALREADY = "already"
    WAIT_FULL = "wait_full"
    WRONG_GROUP = "wrong_group"
    ROLLBACK = "rollback"


def admit(
    *,
    group: str,
    version: int,
    base_version: int | None,
    expected_group: str,
    applied_version: int,
) -> Admission:
    if group != expected_group:
        return Admission.WRONG_GROUP
    if version < applied_version:
        return Admission.ROLLBACK
    if version == applied_version:
        return Admission.ALREADY
    if base_version is not None and base_version != applied_version:
        return Admission.WAIT_FULL
    return Admission.APPLY
