"""Merge the located trees of several compose files with Compose's merge rules.

The result is one located tree, as `docker compose -f A -f B config` would build it before
converting to canonical syntax: every value keeps the Loc of the file and line that wrote it.
The pipeline per file follows compose-go's loader: parse, interpolate, resolve `include`,
resolve `extends`, then merge onto the files before it. `!reset` removes what earlier files
set, `!override` replaces it without the merge rules. Profiles are applied last.

Problems (cycles, a missing or unreadable file, invalid YAML, "cannot override" type clashes)
are returned as MergeProblem values; `load_compose` does not raise for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from xgen_audit.compose.dotenv import read_dotenv
from xgen_audit.compose.canonical import (
    PortBinding,
    VolumeMount,
    parse_port_text,
    parse_volume_text,
    port_bindings,
    scalar_text as _scalar_text,
    volume_mount,
    volume_target,
)
from xgen_audit.compose.interpolate import InterpolationProblem, interpolate_tree
from xgen_audit.parse.tree import (
    TAG_MAP,
    TAG_OVERRIDE,
    TAG_RESET,
    TAG_SEQ,
    TAG_STR,
    Loc,
    YEntry,
    YMap,
    YNode,
    YScalar,
    YSeq,
)
from xgen_audit.parse.yaml_reader import DEFAULT_MAX_BYTES, YamlReadError, read_yaml_file, resolve_plain

Path_ = tuple[str, ...]

# Canonical forms used as merge keys, re-exported for callers of this module.
__all__ = [
    "MergeProblem",
    "MergeResult",
    "PortBinding",
    "VolumeMount",
    "apply_profiles",
    "dedupe",
    "depends_on_map",
    "load_compose",
    "merge_nodes",
    "merge_trees",
    "parse_port_text",
    "parse_volume_text",
    "port_bindings",
    "rebase_relative_paths",
    "rebase_service_paths",
    "strip_tags",
    "volume_mount",
    "volume_target",
]


@dataclass(frozen=True, slots=True)
class MergeProblem:
    """A problem found while loading or merging files.

    `severity` is "error" when Compose would stop on it and "warning" when it goes on.
    """

    loc: Loc
    message: str
    severity: str = "error"
    # "syntax" when a file cannot be read as YAML at all (rule XG001), else "structure".
    kind: str = "structure"


@dataclass(slots=True)
class MergeResult:
    """The merged tree of a file set and what was found on the way.

    `dropped_services` maps each service left out because none of its profiles is active to
    its profiles. `files_read` lists every file read, including `include` and `extends` files.
    """

    root: YMap
    problems: list[MergeProblem] = field(default_factory=list)
    interpolation_problems: list[InterpolationProblem] = field(default_factory=list)
    dropped_services: dict[str, tuple[str, ...]] = field(default_factory=dict)
    active_profiles: tuple[str, ...] = ()
    files_read: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Merging two trees
# ---------------------------------------------------------------------------------------------


def merge_nodes(
    base: YNode | None, override: YNode | None, path: Path_, problems: list[MergeProblem]
) -> YNode | None:
    """Merge `override` onto `base` at `path` (such as ("services", "redis", "ports")).

    Neither input is changed. A null override keeps the base value, as in Compose, except
    for the keys that are replaced as a whole (`command`, `entrypoint`, `healthcheck.test`).
    """
    if override is None:
        return base
    if override.tag == TAG_OVERRIDE:
        return strip_tags(override)
    if base is None:
        return strip_tags(override)

    special = _special_merger(path)
    if special is not None:
        return special(base, override, path, problems)

    if _is_null(override):
        return base
    if isinstance(base, YMap) and isinstance(override, YMap):
        return _merge_maps(base, override, path, problems)
    if isinstance(base, YSeq) and isinstance(override, YSeq):
        return YSeq(items=base.items + strip_tags(override).items, loc=override.loc)
    if isinstance(base, (YMap, YSeq)) and isinstance(override, (YMap, YSeq)):
        problems.append(
            MergeProblem(
                override.loc,
                f"cannot override {_dotted(path)}: a later file sets {_shape(override)} where "
                f"an earlier file set {_shape(base)}; use the same form in both files",
            )
        )
        return base
    return strip_tags(override)


def _merge_maps(base: YMap, override: YMap, path: Path_, problems: list[MergeProblem]) -> YMap:
    entries = dict(base.entries)
    for key, entry in override.entries.items():
        if entry.value is not None and entry.value.tag == TAG_RESET:
            entries.pop(key, None)
            continue
        previous = entries.get(key)
        if previous is None:
            entries[key] = YEntry(key, entry.key_loc, strip_tags(entry.value))
            continue
        merged = merge_nodes(previous.value, entry.value, path + (key,), problems)
        # A merged mapping (a service, `deploy`) keeps the position where it was first
        # defined. Any other value's key follows the file that wrote the value that won.
        both_maps = isinstance(previous.value, YMap) and isinstance(entry.value, YMap) and entry.value.tag != TAG_OVERRIDE
        if both_maps or merged is previous.value:
            key_loc = previous.key_loc
        else:
            key_loc = entry.key_loc
        entries[key] = YEntry(key, key_loc, merged)
    return YMap(entries=entries, loc=base.loc, tag=TAG_MAP)


def strip_tags(node: YNode | None) -> YNode | None:
    """Return the node without `!reset` entries and `!override` tags, sharing what is unchanged."""
    if node is None:
        return None
    if isinstance(node, YScalar):
        if node.tag not in (TAG_OVERRIDE, TAG_RESET):
            return node
        value, tag = resolve_plain(node.raw) if node.style == "" else (node.value, TAG_STR)
        if node.interpolated:
            value, tag = node.value, TAG_STR
        return YScalar(value, node.loc, node.raw, node.style, tag, node.unresolved, node.interpolated)
    if isinstance(node, YSeq):
        # NOTE: Compose ignores `!reset`/`!override` on single sequence items; so do we.
        if node.tag in (TAG_OVERRIDE, TAG_RESET):
            return YSeq(items=list(node.items), loc=node.loc, tag=TAG_SEQ)
        return node
    needs_copy = node.tag in (TAG_OVERRIDE, TAG_RESET) or any(
        entry.value is not None and entry.value.tag in (TAG_OVERRIDE, TAG_RESET)
        for entry in node.entries.values()
    ) or any(isinstance(entry.value, YMap) for entry in node.entries.values())
    if not needs_copy:
        return node
    entries: dict[str, YEntry] = {}
    for key, entry in node.entries.items():
        if entry.value is not None and entry.value.tag == TAG_RESET:
            continue
        entries[key] = YEntry(key, entry.key_loc, strip_tags(entry.value))
    return YMap(entries=entries, loc=node.loc, tag=TAG_MAP)


def _is_null(node: YNode) -> bool:
    return isinstance(node, YScalar) and node.value is None and not node.interpolated


def _dotted(path: Path_) -> str:
    return ".".join(path)


def _shape(node: YNode) -> str:
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    return "a single value"


# --- special rules under services.<name> ------------------------------------------------------

Merger = Callable[[YNode, YNode, Path_, list[MergeProblem]], YNode | None]


def _replace(base: YNode, override: YNode, path: Path_, problems: list[MergeProblem]) -> YNode:
    return strip_tags(override)


def _as_list(node: YNode) -> YSeq:
    """Return a list node; a single value becomes a one-item list at the same place."""
    if isinstance(node, YSeq):
        return node
    if isinstance(node, YScalar) and node.value is None:
        return YSeq(items=[], loc=node.loc)
    return YSeq(items=[node], loc=node.loc)


def _unique_list(key_of: Callable[[YNode], str | None]) -> Merger:
    """Concatenate two lists and keep one item per key; a later item replaces an earlier one
    in its place, as Compose does."""

    def merge(base: YNode, override: YNode, path: Path_, problems: list[MergeProblem]) -> YNode:
        if _is_null(override):
            return base
        if isinstance(base, YMap) or isinstance(override, YMap):
            return _merge_or_report_mismatch(base, override, path, problems)
        items = _as_list(base).items + _as_list(strip_tags(override)).items
        return YSeq(items=dedupe(items, key_of), loc=override.loc)

    return merge


def _merge_or_report_mismatch(
    base: YNode, override: YNode, path: Path_, problems: list[MergeProblem]
) -> YNode:
    if isinstance(base, YMap) and isinstance(override, YMap):
        return _merge_maps(base, override, path, problems)
    problems.append(
        MergeProblem(
            override.loc,
            f"cannot override {_dotted(path)}: a later file sets {_shape(override)} where an "
            f"earlier file set {_shape(base)}; use the same form in both files",
        )
    )
    return base


def dedupe(items: list[YNode], key_of: Callable[[YNode], str | None]) -> list[YNode]:
    """Keep one item per key, the later one, at the position of the first; None keys stay."""
    result: list[YNode] = []
    positions: dict[str, int] = {}
    for item in items:
        key = key_of(item)
        if key is None:
            result.append(item)
            continue
        if key in positions:
            result[positions[key]] = item
            continue
        positions[key] = len(result)
        result.append(item)
    return result


def _value_key(node: YNode) -> str | None:
    return _scalar_text(node)


def _port_key(node: YNode) -> str | None:
    bindings = port_bindings(node)
    if not bindings:
        return None
    return "|".join(binding.key for binding in bindings)


def _volume_key(node: YNode) -> str | None:
    return volume_target(node)


def _secret_key(prefix: str) -> Callable[[YNode], str | None]:
    def key_of(node: YNode) -> str | None:
        if isinstance(node, YMap):
            target = _scalar_text(node.get("target")) if node.get("target") is not None else None
            source = _scalar_text(node.get("source")) if node.get("source") is not None else None
            if target:
                return target if target.startswith("/") else prefix + target
            return prefix + source if source else None
        text = _scalar_text(node)
        return prefix + text if text else None

    return key_of


def _device_key(node: YNode) -> str | None:
    if isinstance(node, YMap):
        return _scalar_text(node.get("target")) if node.get("target") is not None else None
    text = _scalar_text(node)
    if text is None:
        return None
    parts = text.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _env_file_key(node: YNode) -> str | None:
    if isinstance(node, YMap):
        return _scalar_text(node.get("path")) if node.get("path") is not None else None
    return _scalar_text(node)


def _key_value_map(node: YNode, separator: str = "=") -> YMap | None:
    """Return a `KEY=VALUE` list as a mapping, keeping each item's position."""
    if isinstance(node, YMap):
        return node
    if isinstance(node, YScalar) and node.value is None:
        return YMap(entries={}, loc=node.loc)
    if not isinstance(node, YSeq):
        return None
    entries: dict[str, YEntry] = {}
    for item in node.items:
        text = _scalar_text(item)
        if text is None:
            continue
        key, found, value = text.partition(separator)
        value_node = YScalar(
            value=value if found else None,
            loc=item.loc,
            raw=item.raw if isinstance(item, YScalar) else "",
            style=item.style if isinstance(item, YScalar) else "",
            tag=TAG_STR,
            unresolved=item.unresolved if isinstance(item, YScalar) else (),
            interpolated=item.interpolated if isinstance(item, YScalar) else False,
        )
        entries.pop(key, None)
        entries[key] = YEntry(key, item.loc, value_node)
    return YMap(entries=entries, loc=node.loc)


def _merge_key_values(
    base: YNode, override: YNode, path: Path_, problems: list[MergeProblem]
) -> YNode:
    """Merge `environment`-style values (mapping or KEY=VALUE list) by key, later wins.

    Two lists stay a list; any mapping makes the result a mapping.
    """
    if _is_null(override):
        return base
    override = strip_tags(override)
    if isinstance(base, YSeq) and isinstance(override, YSeq):
        return YSeq(items=dedupe(base.items + override.items, _assignment_key), loc=override.loc)
    base_map = _key_value_map(base)
    override_map = _key_value_map(override)
    if base_map is None or override_map is None:
        return _merge_or_report_mismatch(base, override, path, problems)
    entries = dict(base_map.entries)
    for key, entry in override_map.entries.items():
        entries[key] = entry
    return YMap(entries=entries, loc=base_map.loc)


def _assignment_key(node: YNode) -> str | None:
    text = _scalar_text(node)
    return text.partition("=")[0] if text is not None else None


def _short_to_map(
    default_value: Callable[[YScalar], YNode | None],
) -> Callable[[YNode], YMap | None]:
    def convert(node: YNode) -> YMap | None:
        if isinstance(node, YMap):
            return node
        if isinstance(node, YScalar) and node.value is None:
            return YMap(entries={}, loc=node.loc)
        if not isinstance(node, YSeq):
            return None
        entries: dict[str, YEntry] = {}
        for item in node.items:
            text = _scalar_text(item)
            if text is None or not isinstance(item, YScalar):
                continue
            entries[text] = YEntry(text, item.loc, default_value(item))
        return YMap(entries=entries, loc=node.loc)

    return convert


def _started_dependency(item: YScalar) -> YNode:
    return YMap(
        entries={
            "condition": YEntry(
                "condition", item.loc, YScalar("service_started", item.loc, "service_started")
            ),
            "required": YEntry("required", item.loc, YScalar(True, item.loc, "true", tag="tag:yaml.org,2002:bool")),
        },
        loc=item.loc,
    )


def _null_value(item: YScalar) -> YNode:
    return YScalar(None, item.loc, "", tag="tag:yaml.org,2002:null")


_depends_on_map = _short_to_map(_started_dependency)
_networks_map = _short_to_map(_null_value)


def depends_on_map(node: YNode | None) -> YMap | None:
    """Return `depends_on` in long form: a list becomes {name: {condition: service_started}}."""
    return None if node is None else _depends_on_map(node)


def _merge_as_maps(convert: Callable[[YNode], YMap | None]) -> Merger:
    def merge(base: YNode, override: YNode, path: Path_, problems: list[MergeProblem]) -> YNode:
        if _is_null(override):
            return base
        base_map = convert(base)
        override_map = convert(strip_tags(override))
        if base_map is None or override_map is None:
            return _merge_or_report_mismatch(base, override, path, problems)
        return _merge_maps(base_map, override_map, path, problems)

    return merge


def _merge_logging(base: YNode, override: YNode, path: Path_, problems: list[MergeProblem]) -> YNode:
    if _is_null(override):
        return base
    if isinstance(base, YMap) and isinstance(override, YMap):
        base_driver = _scalar_text(base.get("driver")) if base.get("driver") is not None else None
        new_driver = (
            _scalar_text(override.get("driver")) if override.get("driver") is not None else None
        )
        if base_driver and new_driver and base_driver != new_driver:
            return strip_tags(override)
        return _merge_maps(base, override, path, problems)
    return _merge_or_report_mismatch(base, override, path, problems)


def _build_map(node: YNode) -> YMap | None:
    if isinstance(node, YMap):
        return node
    if isinstance(node, YScalar) and isinstance(node.value, str):
        return YMap(entries={"context": YEntry("context", node.loc, node)}, loc=node.loc)
    return None


_merge_build = _merge_as_maps(_build_map)

# Patterns use "*" for one path element. The first matching pattern wins.
_SPECIALS: list[tuple[Path_, Merger]] = [
    (("services", "*", "command"), _replace),
    (("services", "*", "entrypoint"), _replace),
    (("services", "*", "healthcheck", "test"), _replace),
    (("services", "*", "ulimits", "*"), _replace),
    (("services", "*", "environment"), _merge_key_values),
    (("services", "*", "labels"), _merge_key_values),
    (("services", "*", "annotations"), _merge_key_values),
    (("services", "*", "sysctls"), _merge_key_values),
    (("services", "*", "build", "args"), _merge_key_values),
    (("services", "*", "build", "labels"), _merge_key_values),
    (("services", "*", "build", "additional_contexts"), _merge_key_values),
    (("services", "*", "deploy", "labels"), _merge_key_values),
    (("services", "*", "depends_on"), _merge_as_maps(_depends_on_map)),
    (("services", "*", "networks"), _merge_as_maps(_networks_map)),
    (("services", "*", "logging"), _merge_logging),
    (("services", "*", "build"), _merge_build),
    (("services", "*", "ports"), _unique_list(_port_key)),
    (("services", "*", "volumes"), _unique_list(_volume_key)),
    (("services", "*", "secrets"), _unique_list(_secret_key("/run/secrets/"))),
    (("services", "*", "configs"), _unique_list(_secret_key("/"))),
    (("services", "*", "devices"), _unique_list(_device_key)),
    (("services", "*", "env_file"), _unique_list(_env_file_key)),
    (("services", "*", "label_file"), _unique_list(lambda node: None)),
    (("services", "*", "extra_hosts"), _unique_list(_value_key)),
    (("services", "*", "expose"), _unique_list(_value_key)),
    (("services", "*", "cap_add"), _unique_list(_value_key)),
    (("services", "*", "cap_drop"), _unique_list(_value_key)),
    (("services", "*", "profiles"), _unique_list(_value_key)),
    (("services", "*", "links"), _unique_list(_value_key)),
    (("services", "*", "dns"), _unique_list(_value_key)),
    (("services", "*", "dns_opt"), _unique_list(_value_key)),
    (("services", "*", "dns_search"), _unique_list(_value_key)),
    (("services", "*", "tmpfs"), _unique_list(_value_key)),
    (("services", "*", "networks", "*", "aliases"), _unique_list(_value_key)),
]


def _special_merger(path: Path_) -> Merger | None:
    for pattern, merger in _SPECIALS:
        if len(pattern) == len(path) and all(
            part == "*" or part == actual for part, actual in zip(pattern, path)
        ):
            return merger
    return None


def merge_trees(trees: Sequence[YNode | None]) -> tuple[YMap, list[MergeProblem]]:
    """Merge whole-file trees left to right; later files win. Non-mapping roots are reported."""
    problems: list[MergeProblem] = []
    merged: YMap | None = None
    for tree in trees:
        if tree is None:
            continue
        if not isinstance(tree, YMap):
            problems.append(
                MergeProblem(
                    tree.loc, "the top level of a compose file must be a mapping; the file is ignored"
                )
            )
            continue
        if merged is None:
            merged = YMap(entries={}, loc=tree.loc)
        result = merge_nodes(merged, tree, (), problems)
        merged = result if isinstance(result, YMap) else merged
    return merged if merged is not None else YMap(entries={}), problems


# ---------------------------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------------------------


def apply_profiles(
    root: YMap, profiles: Sequence[str], named_services: Sequence[str] = ()
) -> tuple[YMap, dict[str, tuple[str, ...]]]:
    """Drop the services none of whose profiles is active; return the tree and what was dropped.

    A service without `profiles` is always active. `*` activates every profile, as in Compose.
    Services named in `named_services` stay whatever their profiles.
    """
    services = root.get("services")
    if not isinstance(services, YMap):
        return root, {}

    active = set(profiles)
    kept: dict[str, YEntry] = {}
    dropped: dict[str, tuple[str, ...]] = {}
    for name, entry in services.entries.items():
        service_profiles = _service_profiles(entry.value)
        if (
            not service_profiles
            or "*" in active
            or active.intersection(service_profiles)
            or name in named_services
        ):
            kept[name] = entry
        else:
            dropped[name] = service_profiles

    if not dropped:
        return root, {}
    entries = dict(root.entries)
    entries["services"] = YEntry(
        "services", root.key_loc("services"), YMap(entries=kept, loc=services.loc)
    )
    return YMap(entries=entries, loc=root.loc), dict(sorted(dropped.items()))


def _service_profiles(service: YNode | None) -> tuple[str, ...]:
    if not isinstance(service, YMap):
        return ()
    profiles = service.get("profiles")
    if profiles is None:
        return ()
    texts = [_scalar_text(item) for item in _as_list(profiles).items]
    return tuple(text for text in texts if text)


# ---------------------------------------------------------------------------------------------
# Loading files: include, extends, interpolation
# ---------------------------------------------------------------------------------------------


class _Loader:
    """Loads the files of one project, sharing the environment and the problem lists."""

    def __init__(self, env: Mapping[str, str], project_dir: Path, interpolate: bool, max_bytes: int):
        self.env = dict(env)
        self.max_bytes = max_bytes
        self.project_dir = project_dir
        self.interpolate = interpolate
        self.problems: list[MergeProblem] = []
        self.interpolation_problems: list[InterpolationProblem] = []
        self.files_read: list[str] = []
        self.cache: dict[tuple[str, tuple[tuple[str, str], ...]], YNode | None] = {}

    # --- reading ----------------------------------------------------------------------------

    def read(self, path: str, env: Mapping[str, str], origin: Loc | None) -> YNode | None:
        """Parse and interpolate one file; None when it cannot be read (a problem is added)."""
        cache_key = (os.path.abspath(path), tuple(sorted(env.items())))
        if cache_key in self.cache:
            return self.cache[cache_key]

        tree = self._parse(path, origin)
        if tree is not None and self.interpolate:
            tree, found = interpolate_tree(tree, env)
            self.interpolation_problems.extend(found)
        self.cache[cache_key] = tree
        return tree

    def _parse(self, path: str, origin: Loc | None) -> YNode | None:
        where = origin or Loc(path, 1, 1)
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            self.problems.append(MergeProblem(where, f"file not found: {path}"))
            return None
        except OSError as error:
            self.problems.append(
                MergeProblem(where, f"cannot read {path}: {error.strerror or error}", kind="syntax")
            )
            return None
        except ValueError:
            # The operating system cannot even look up a path with a NUL byte in it.
            self.problems.append(MergeProblem(where, f"cannot read {path!r}: the path contains a NUL byte", kind="syntax"))
            return None
        if path not in self.files_read:
            self.files_read.append(path)
        try:
            parsed = read_yaml_file(data, path, self.max_bytes)
        except YamlReadError as error:
            self.problems.append(MergeProblem(Loc(path, error.line, error.column), error.message, kind="syntax"))
            return None
        root = parsed.root
        if root is None or (isinstance(root, YScalar) and root.value is None):
            # Compose stops on such a file with "empty compose file".
            self.problems.append(
                MergeProblem(
                    Loc(path, 1, 1),
                    "the file has no content (only comments or nothing), which Compose rejects; "
                    "add a `services:` mapping or remove the file",
                )
            )
            return YMap(loc=Loc(path, 1, 1))
        return root

    # --- one file of the file set -----------------------------------------------------------

    def load(
        self,
        path: str,
        env: Mapping[str, str],
        include_chain: tuple[str, ...] = (),
        origin: Loc | None = None,
    ) -> YMap | None:
        tree = self.read(path, env, origin)
        if tree is None:
            return None
        if isinstance(tree, YScalar) and tree.value is None:
            # `---` alone or a file of comments: an empty model, as for an empty file.
            return YMap(loc=tree.loc)
        if not isinstance(tree, YMap):
            self.problems.append(
                MergeProblem(tree.loc, "the top level of a compose file must be a mapping")
            )
            return None

        chain = include_chain + (os.path.abspath(path),)
        tree = self._apply_include(tree, path, env, chain)
        tree = self._apply_extends(tree, path, env)
        return tree

    # --- include ----------------------------------------------------------------------------

    def _apply_include(
        self, tree: YMap, path: str, env: Mapping[str, str], chain: tuple[str, ...]
    ) -> YMap:
        include = tree.get("include")
        if include is None:
            return tree
        entries = dict(tree.entries)
        del entries["include"]
        local = YMap(entries=entries, loc=tree.loc)

        merged: YMap | None = None
        for item in _as_list(include).items:
            included = self._load_include_item(item, path, env, chain)
            if included is None:
                continue
            merged = included if merged is None else self._merge_resources(merged, included)
        if merged is None:
            return local
        return self._merge_resources(merged, local)

    def _merge_resources(self, included: YMap, local: YMap) -> YMap:
        """Merge a local file over included resources, as recent compose-go does for `include`.

        Compose v2.40 rejects a local service that has the same name as an included one
        ("conflicts with imported resource"), so such a clash is also reported as a warning.
        """
        included_services = included.get("services")
        local_services = local.get("services")
        if isinstance(included_services, YMap) and isinstance(local_services, YMap):
            for name in local_services.entries:
                if name in included_services.entries:
                    self.problems.append(
                        MergeProblem(
                            local_services.key_loc(name),
                            f"service {name!r} is defined here and in an included file; "
                            "Compose v2.40 rejects this, newer versions merge the two",
                            "warning",
                        )
                    )
        result = merge_nodes(included, local, (), self.problems)
        return result if isinstance(result, YMap) else local

    def _load_include_item(
        self, item: YNode, including: str, env: Mapping[str, str], chain: tuple[str, ...]
    ) -> YMap | None:
        base_dir = os.path.dirname(including)
        if isinstance(item, YMap):
            path_node = item.get("path")
            paths = [node for node in _as_list(path_node).items] if path_node is not None else []
            project_node = item.get("project_directory")
            env_file_node = item.get("env_file")
        else:
            paths = [item]
            project_node = None
            env_file_node = None

        files: list[tuple[str, Loc]] = []
        for node in paths:
            text = _scalar_text(node)
            if text:
                files.append((os.path.normpath(os.path.join(base_dir, text)), node.loc))
        if not files:
            self.problems.append(MergeProblem(item.loc, "an include entry names no file; add a path"))
            return None

        project_dir = (
            os.path.normpath(os.path.join(base_dir, _scalar_text(project_node) or ""))
            if project_node is not None
            else os.path.dirname(files[0][0])
        )
        env_files = (
            [
                os.path.normpath(os.path.join(base_dir, text))
                for text in (_scalar_text(node) for node in _as_list(env_file_node).items)
                if text
            ]
            if env_file_node is not None
            else [os.path.join(project_dir, ".env")]
        )
        included_env: dict[str, str] = {}
        for env_path in env_files:
            if os.path.isfile(env_path):
                for key, value in read_dotenv(env_path, env).values.items():
                    included_env.setdefault(key, value)
        # The including project's variables win over the included project's own `.env`.
        included_env.update(env)

        merged: YMap | None = None
        for file_path, loc in files:
            absolute = os.path.abspath(file_path)
            if absolute in chain:
                self.problems.append(
                    MergeProblem(loc, f"include cycle: {file_path} includes itself through {' -> '.join(chain)}")
                )
                continue
            tree = self.load(file_path, included_env, chain, loc)
            if tree is None:
                continue
            tree = rebase_relative_paths(tree, Path(project_dir), self.project_dir)
            merged = tree if merged is None else self._merge_resources(merged, tree)
        return merged

    # --- extends ----------------------------------------------------------------------------

    def _apply_extends(self, tree: YMap, path: str, env: Mapping[str, str]) -> YMap:
        services = tree.get("services")
        if not isinstance(services, YMap):
            return tree
        if not any(
            isinstance(entry.value, YMap) and "extends" in entry.value
            for entry in services.entries.values()
        ):
            return tree

        resolved: dict[str, YEntry] = {}
        memo: dict[tuple[str, str], YMap | None] = {}
        for name, entry in services.entries.items():
            service = self._resolve_service(path, services, name, env, (), memo)
            resolved[name] = YEntry(name, entry.key_loc, service if service is not None else entry.value)
        entries = dict(tree.entries)
        entries["services"] = YEntry("services", tree.key_loc("services"), YMap(resolved, services.loc))
        return YMap(entries=entries, loc=tree.loc)

    def _resolve_service(
        self,
        path: str,
        services: YMap,
        name: str,
        env: Mapping[str, str],
        chain: tuple[tuple[str, str], ...],
        memo: dict[tuple[str, str], YMap | None],
    ) -> YMap | None:
        key = (os.path.abspath(path), name)
        if key in memo:
            return memo[key]
        service = services.get(name)
        if not isinstance(service, YMap) or "extends" not in service:
            memo[key] = service if isinstance(service, YMap) else None
            return memo[key]

        extends = service.get("extends")
        own = YMap({k: e for k, e in service.entries.items() if k != "extends"}, service.loc)
        base_name, base_file, where = _extends_target(extends)
        if base_name is None:
            self.problems.append(
                MergeProblem(where, f"service {name!r}: extends must name a service; add `service:`")
            )
            memo[key] = own
            return own

        if base_file is None:
            base_path = path
            base_services = services
        else:
            base_path = os.path.normpath(os.path.join(os.path.dirname(path), base_file))
            base_tree = self.read(base_path, env, where)
            if base_tree is None:
                memo[key] = own
                return own
            base_services = base_tree.get("services") if isinstance(base_tree, YMap) else None
            if not isinstance(base_services, YMap):
                base_services = YMap()

        target = (os.path.abspath(base_path), base_name)
        if target in chain or target == key:
            cycle = " -> ".join(f"{service_name}" for _, service_name in chain + (key, target))
            self.problems.append(MergeProblem(where, f"extends cycle: {cycle}; break the loop"))
            memo[key] = own
            return own
        if base_name not in base_services:
            self.problems.append(
                MergeProblem(
                    where,
                    f"service {name!r} extends {base_name!r}, which is not defined in {base_path}",
                )
            )
            memo[key] = own
            return own

        base = self._resolve_service(base_path, base_services, base_name, env, chain + (key,), memo)
        if base is None:
            memo[key] = own
            return own
        if os.path.dirname(os.path.abspath(base_path)) != os.path.dirname(os.path.abspath(path)):
            base = rebase_service_paths(base, Path(os.path.dirname(os.path.abspath(base_path))))
        merged = merge_nodes(base, own, ("services", name), self.problems)
        result = merged if isinstance(merged, YMap) else own
        memo[key] = result
        return result


def _extends_target(extends: YNode | None) -> tuple[str | None, str | None, Loc]:
    if isinstance(extends, YScalar):
        return _scalar_text(extends), None, extends.loc
    if isinstance(extends, YMap):
        service = extends.get("service")
        file_node = extends.get("file")
        where = file_node.loc if file_node is not None else extends.loc
        file_text = _scalar_text(file_node) if file_node is not None else None
        return (_scalar_text(service) if service is not None else None), file_text or None, where
    loc = extends.loc if extends is not None else Loc("", 0, 0)
    return None, None, loc


# --- relative paths of files from other directories -------------------------------------------


def _absolute(text: str, base_dir: Path) -> str:
    if text.startswith("~") or os.path.isabs(text) or "://" in text:
        return text
    # Compose makes these paths absolute; a relative result would read as a volume name.
    return os.path.abspath(os.path.join(str(base_dir), text))


def _with_value(node: YScalar, value: str) -> YScalar:
    return YScalar(value, node.loc, node.raw, node.style, node.tag, node.unresolved, node.interpolated)


def rebase_service_paths(service: YMap, base_dir: Path) -> YMap:
    """Return the service with relative host paths made absolute against `base_dir`.

    Used for services that come from a file in another directory (`extends.file`, `include`),
    because Compose resolves their relative paths against that file's directory.
    NOTE: covers build context, bind-mount sources and env_file; other path keys
    (label_file, build.dockerfile outside the context) are left as written.
    """
    entries = dict(service.entries)

    build = service.get("build")
    if isinstance(build, YScalar) and isinstance(build.value, str):
        entries["build"] = YEntry("build", service.key_loc("build"), _with_value(build, _absolute(build.value, base_dir)))
    elif isinstance(build, YMap) and isinstance(build.get("context"), YScalar):
        context = build.get("context")
        if isinstance(context.value, str):
            build_entries = dict(build.entries)
            build_entries["context"] = YEntry(
                "context", build.key_loc("context"), _with_value(context, _absolute(context.value, base_dir))
            )
            entries["build"] = YEntry("build", service.key_loc("build"), YMap(build_entries, build.loc))

    volumes = service.get("volumes")
    if isinstance(volumes, YSeq):
        entries["volumes"] = YEntry(
            "volumes",
            service.key_loc("volumes"),
            YSeq([_rebase_volume(item, base_dir) for item in volumes.items], volumes.loc),
        )

    env_file = service.get("env_file")
    if env_file is not None:
        rebased = []
        for item in _as_list(env_file).items:
            if isinstance(item, YScalar) and isinstance(item.value, str):
                rebased.append(_with_value(item, _absolute(item.value, base_dir)))
            elif isinstance(item, YMap) and isinstance(item.get("path"), YScalar):
                path_node = item.get("path")
                item_entries = dict(item.entries)
                item_entries["path"] = YEntry(
                    "path", item.key_loc("path"), _with_value(path_node, _absolute(str(path_node.value), base_dir))
                )
                rebased.append(YMap(item_entries, item.loc))
            else:
                rebased.append(item)
        entries["env_file"] = YEntry("env_file", service.key_loc("env_file"), YSeq(rebased, env_file.loc))

    return YMap(entries, service.loc, service.tag)


def _rebase_volume(item: YNode, base_dir: Path) -> YNode:
    if isinstance(item, YScalar) and isinstance(item.value, str):
        source, separator, rest = item.value.partition(":")
        if separator and source.startswith("."):
            return _with_value(item, _absolute(source, base_dir) + ":" + rest)
        return item
    if isinstance(item, YMap):
        source = item.get("source")
        kind = _scalar_text(item.get("type")) if item.get("type") is not None else None
        if kind == "bind" and isinstance(source, YScalar) and isinstance(source.value, str):
            entries = dict(item.entries)
            entries["source"] = YEntry("source", item.key_loc("source"), _with_value(source, _absolute(source.value, base_dir)))
            return YMap(entries, item.loc)
    return item


def rebase_relative_paths(tree: YMap, file_dir: Path, project_dir: Path) -> YMap:
    """Make relative host paths of an included file absolute when it lives elsewhere."""
    if os.path.abspath(file_dir) == os.path.abspath(project_dir):
        return tree
    services = tree.get("services")
    if not isinstance(services, YMap):
        return tree
    rebased = {
        name: YEntry(name, entry.key_loc, rebase_service_paths(entry.value, file_dir))
        if isinstance(entry.value, YMap)
        else entry
        for name, entry in services.entries.items()
    }
    entries = dict(tree.entries)
    entries["services"] = YEntry("services", tree.key_loc("services"), YMap(rebased, services.loc))
    return YMap(entries, tree.loc)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def load_compose(
    files: Sequence[str | Path],
    env: Mapping[str, str],
    profiles: Sequence[str] = (),
    *,
    interpolate: bool = True,
    project_dir: str | Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> MergeResult:
    """Load, interpolate and merge a file set as `docker compose -f ... config` does.

    `env` is the interpolation environment (process environment plus `.env`, already
    combined by the caller). `project_dir` defaults to the directory of the first file.
    """
    paths = [str(path) for path in files]
    if project_dir is not None:
        base_dir = Path(project_dir)
    elif paths:
        base_dir = Path(os.path.dirname(paths[0]))
    else:
        base_dir = Path(".")
    loader = _Loader(env, base_dir, interpolate, max_bytes)

    trees = [loader.load(path, env) for path in paths]
    root, merge_problems = merge_trees(trees)
    root, dropped = apply_profiles(root, profiles)

    return MergeResult(
        root=root,
        problems=loader.problems + merge_problems,
        interpolation_problems=sorted(
            loader.interpolation_problems, key=lambda problem: (problem.loc, problem.variable)
        ),
        dropped_services=dropped,
        active_profiles=tuple(profiles),
        files_read=loader.files_read,
    )
