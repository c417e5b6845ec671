"""Celery's setting names and defaults, read from the installed celery package.

The table is built from `celery.app.defaults` at run time, so it always matches
the Celery that xgen-audit runs with. Celery is imported inside
`settings_table()` only, because importing it takes about a tenth of a second
and most runs that never read Python configuration do not need it.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SettingsTable:
    """Valid setting names of the installed Celery and the mapping between old and new names."""

    celery_version: str
    new_names: frozenset[str]
    old_names: frozenset[str]
    defaults: dict[str, Any]
    types: dict[str, str]
    to_old: dict[str, str]
    to_new: dict[str, str]

    def is_setting(self, name: str) -> bool:
        return name in self.new_names or name in self.old_names

    def new_name(self, name: str) -> str:
        """Return the lowercase name for an old or new name, or `name` unchanged when unknown."""
        return self.to_new.get(name, name)

    def old_name(self, name: str) -> str:
        return self.to_old.get(name, name)

    def default(self, name: str) -> Any:
        return self.defaults.get(self.new_name(name))

    def closest(self, name: str, candidates: list[str] | None = None) -> str | None:
        """Return the valid name closest to `name`, comparing without case, or None.

        Without `candidates`, an all-uppercase name is compared with the old names
        only: in a module of lowercase settings, UPPERCASE names are usually the
        module's own constants (`REDIS_HOST`), not misspelt settings.
        """
        if candidates is None:
            candidates = sorted(self.old_names) if name.isupper() else sorted(self.new_names | self.old_names)
        pool = candidates
        folded = {candidate.casefold(): candidate for candidate in pool}
        if name.casefold() in folded:
            return folded[name.casefold()]
        matches = difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.8)
        return folded[matches[0]] if matches else None


@functools.cache
def settings_table() -> SettingsTable:
    """Build the table from the installed celery (imported here, once per process)."""
    import celery
    from celery.app.defaults import DEFAULTS, NAMESPACES, SETTING_KEYS, _TO_NEW_KEY, _TO_OLD_KEY, flatten

    types: dict[str, str] = {}
    for name, option in flatten(NAMESPACES):
        option_type = option.type
        types[name] = option_type if isinstance(option_type, str) else getattr(option_type, "__name__", "any")

    return SettingsTable(
        celery_version=str(celery.__version__),
        new_names=frozenset(SETTING_KEYS),
        old_names=frozenset(_TO_NEW_KEY),
        defaults=dict(DEFAULTS),
        types=types,
        to_old=dict(_TO_OLD_KEY),
        to_new=dict(_TO_NEW_KEY),
    )
