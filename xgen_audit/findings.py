"""Results of a run: findings (what failed, where) and checks (the verdict per rule).

These models are the public JSON interface; field names are kept stable.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not_applicable"


class Finding(BaseModel):
    """One problem at one place: what is wrong, where, and how to fix it."""

    model_config = ConfigDict(frozen=True)

    rule: str
    name: str
    severity: Severity
    message: str
    fix: str
    file: str
    line: int
    column: int
    service: str | None = None
    stack: str | None = None

    def sort_key(self) -> tuple:
        return (self.stack or "", self.file, self.line, self.column, self.rule, self.message)


class Check(BaseModel):
    """The verdict of one rule on one file (or stack).

    `reason` says why the verdict is `unknown`, or which services were out of reach.
    """

    model_config = ConfigDict(frozen=True)

    rule: str
    name: str
    file: str
    status: Status
    reason: str | None = None
    stack: str | None = None

    def sort_key(self) -> tuple:
        return (self.stack or "", self.file, self.rule)
