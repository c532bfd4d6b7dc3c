"""MQTT topics of the fleet (pure core).

* ``<prefix>/fleet/<group>/chunk/<i>`` — chunks of the full bundle, retained, QoS 1 (first);
* ``<prefix>/fleet/<group>/bundle`` — the signed header of the full bundle, retained, QoS 1;
* ``<prefix>/fleet/<group>/delta`` — a delta with its chunks inline, QoS 1, not retained (a
  gateway that missed it catches up from the retained full bundle);
* ``<prefix>/<gateway>/fleet/applied`` — the gateway's acknowledgement, retained;
* ``<prefix>/<gateway>/fleet/follower`` — ``online``/``offline`` (last will), retained;
* ``<prefix>/<gateway>/status`` and ``…/health`` — the daemon's (``online``/``offline``; the
  signed health message with camera and door state and the last event), retained.
"""

from __future__ import annotations

from dataclasses import dataclass

__layer__ = "core"


@dataclass(frozen=True)
class FleetTopics:
    prefix: str

    @property
    def _base(self) -> str:
        return self.prefix.rstrip("/")

    def group_filter(self, group: str) -> str:
        return f"{self._base}/fleet/{group}/#"

    def bundle(self, group: str) -> str:
        return f"{self._base}/fleet/{group}/bundle"

    def delta(self, group: str) -> str:
        return f"{self._base}/fleet/{group}/delta"

    def chunk(self, group: str, index: int) -> str:
        return f"{self._base}/fleet/{group}/chunk/{index}"

    def applied(self, gateway: str) -> str:
        return f"{self._base}/{gateway}/fleet/applied"

    def follower(self, gateway: str) -> str:
        return f"{self._base}/{gateway}/fleet/follower"

    def status(self, gateway: str) -> str:
        return f"{self._base}/{gateway}/status"

    def health(self, gateway: str) -> str:
        return f"{self._base}/{gateway}/health"

    @property
    def all_applied(self) -> str:
        return f"{self._base}/+/fleet/applied"

    @property
    def all_followers(self) -> str:
        return f"{self._base}/+/fleet/follower"

    @property
    def all_status(self) -> str:
        return f"{self._base}/+/status"

    @property
    def all_health(self) -> str:
        return f"{self._base}/+/health"

    def gateway_of(self, topic: str) -> str | None:
        """The gateway id in ``<prefix>/<gateway>/…``."""
        head = self._base + "/"
        if not topic.startswith(head):
            return None
        rest = topic[len(head) :].split("/")
        return rest[0] if len(rest) >= 2 and rest[0] != "fleet" else None

    def parse(self, topic: str) -> tuple[str, str, int | None] | None:
        """``(group, "bundle"|"delta"|"chunk", chunk index)`` of a fleet topic, else None."""
        head = self._base + "/fleet/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) == 2 and parts[1] in ("bundle", "delta"):
            return parts[0], parts[1], None
        if len(parts) == 3 and parts[1] == "chunk" and parts[2].isdigit():
            return parts[0], "chunk", int(parts[2])
        return None
