"""Shared base for config sections: frozen, unknown keys refused; non-empty path/string types."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict


def _not_blank(value: object) -> object:
    """Refuse ``""`` (and white space only) before pydantic turns it into ``Path(".")``."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


NonEmptyPath = Annotated[Path, BeforeValidator(_not_blank)]
"""A file or directory path that must be given (``""`` would silently mean ``.``)."""

NonEmptyStr = Annotated[str, BeforeValidator(_not_blank)]
"""A device name, host name or similar that must not be empty or blank."""


class Section(BaseModel):
    """Every config table: frozen, ``extra="forbid"`` so typos are errors, not silent defaults.

    ``hide_input_in_errors``: a rejected value (e.g. a camera URL carrying a password) must
    not be echoed by ``str(ValidationError)``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
