"""Shared base for config sections: frozen, unknown keys refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Every config table: frozen, ``extra="forbid"`` so typos are errors, not silent defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)
