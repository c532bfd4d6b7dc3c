"""Open-set 1:N evaluation over labelled embeddings (pure core: numpy + stdlib).

Protocol: the first ``n_enroll`` embeddings of each enrolled identity become its templates;
its remaining embeddings are genuine probes; every embedding of a non-enrolled identity is
an impostor probe. Each probe goes through the same :func:`match` as the door.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_gate.gallery.matching import MatchDecision, TemplateMatrix, match

__layer__ = "core"

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class OpenSetReport:
    """Counts of one open-set run at one threshold and margin."""

    threshold: float
    margin: float
    n_enrolled: int
    n_genuine: int
    correct: int
    misidentified: int
    n_impostor: int
    false_accepts: int

    @property
    def genuine_identification_rate(self) -> float:
        return self.correct / self.n_genuine if self.n_genuine else float("nan")

    @property
    def false_accept_rate(self) -> float:
        return self.false_accepts / self.n_impostor if self.n_impostor else float("nan")

    def as_json(self) -> dict[str, float | int]:
        return {
            "threshold": self.threshold,
            "margin": self.margin,
            "enrolled_identities": self.n_enrolled,
            "genuine_probes": self.n_genuine,
            "genuine_identification_rate": round(self.genuine_identification_rate, 4),
            "misidentified": self.misidentified,
            "impostor_probes": self.n_impostor,
            "false_accepts": self.false_accepts,
        }


def open_set_eval(
    labels: Sequence[str],
    embeddings: FloatArray,
    enrolled: Sequence[str],
    n_enroll: int,
    threshold: float,
    margin: float,
) -> OpenSetReport:
    """Run the protocol above; ``labels[i]`` names the identity of ``embeddings[i]``."""
    lab = np.asarray(labels)
    people = sorted(set(enrolled))
    gallery = TemplateMatrix(
        people, [embeddings[lab == p][:n_enroll] for p in people], int(embeddings.shape[1])
    )
    correct = mis = n_gen = fa = n_imp = 0
    for i, label in enumerate(labels):
        if label in enrolled:
            rank = int(np.count_nonzero(lab[: i + 1] == label))
            if rank <= n_enroll:
                continue  # an enrollment image, not a probe
            n_gen += 1
            r = match(gallery, embeddings[i], threshold, margin)
            if r.decision is MatchDecision.MATCH:
                correct += r.user_id == label
                mis += r.user_id != label
        else:
            n_imp += 1
            fa += match(gallery, embeddings[i], threshold, margin).decision is MatchDecision.MATCH
    return OpenSetReport(threshold, margin, len(people), n_gen, correct, mis, n_imp, fa)
