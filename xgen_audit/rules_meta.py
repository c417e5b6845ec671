"""Rule metadata: one TOML file per rule id under `rules/`, the single source of rule docs.

The files are packaged into the wheel as `xgen_audit/_rules`; in a source checkout
they are read from the repository's `rules/` folder.
"""

from __future__ import annotations

import re
import tomllib
from enum import Enum
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from xgen_audit.findings import Severity

RULE_ID_RE = re.compile(r"^XG\d{3}$")


class Area(str, Enum):
    META = "meta"
    COMPOSE = "compose"
    CELERY = "celery"


class Fixable(str, Enum):
    NONE = "none"
    SAFE = "safe"
    UNSAFE = "unsafe"


class Examples(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    failing: str
    passing: str
    language: str = "yaml"


class RuleMeta(BaseModel):
    """Everything the docs, `xgen-audit rule` and the findings' fix line say about a rule."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    area: Area
    hardening_item: int | None = Field(default=None, ge=1, le=7)
    severity: Severity
    severity_note: str | None = None
    tags: list[str] = Field(default_factory=list)
    fixable: Fixable = Fixable.NONE
    summary: str
    rationale: str
    fix: str
    examples: Examples
    limitations: str | None = None
    references: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not RULE_ID_RE.match(value):
            raise ValueError(f"rule id {value!r} does not match XG followed by three digits")
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", value):
            raise ValueError(f"rule name {value!r} is not kebab-case")
        return value


class RuleCatalogError(Exception):
    """The packaged rule catalogue is broken: a bug in xgen-audit, not in user input."""


def rules_dir() -> Path:
    packaged = Path(__file__).parent / "_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).parent.parent / "rules"


@cache
def load_catalog() -> dict[str, RuleMeta]:
    """Load every rule's metadata, keyed by id and sorted."""
    catalog: dict[str, RuleMeta] = {}
    for path in sorted(rules_dir().glob("XG*.toml")):
        try:
            meta = RuleMeta.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, ValidationError) as error:
            raise RuleCatalogError(f"{path.name}: {error}") from error
        if meta.id != path.stem:
            raise RuleCatalogError(f"{path.name}: id {meta.id} does not match the file name")
        catalog[meta.id] = meta
    return dict(sorted(catalog.items()))
