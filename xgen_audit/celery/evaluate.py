"""A small interpreter for module-level Python that never runs the user's code.

It walks a module's statements in order and evaluates the expressions it can:
literals, names bound earlier, arithmetic, string building, displays, a few
builtins and environment reads (`os.environ`, `os.getenv`, django-environ and
python-decouple). Anything else becomes an `Unknown` that records why and where.
Names bound inside `if`, `for`, `while`, `try` or `match` blocks are unknown,
because the branch taken cannot be decided statically.
"""

from __future__ import annotations

import ast
import builtins
import operator
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from xgen_audit.celery.locate import find_module, is_package_dir, resolve_relative
from xgen_audit.celery.model import Problem, Unknown
from xgen_audit.celery.source import ParsedFile, read_python
from xgen_audit.celery.values import (
    AppConf,
    AppObj,
    Binding,
    BoundMethod,
    ClassObj,
    ConfigOp,
    ConfigSource,
    DecoupleConfig,
    DjangoEnv,
    Ev,
    EnvRead,
    ExtRef,
    FuncObj,
    Scope,
    UserModule,
    is_data,
    merge_envs,
    unknown,
)
from xgen_audit.parse.tree import Loc

MAX_MODULE_DEPTH = 25
MAX_EXPR_DEPTH = 60
MAX_STRING = 100_000
MAX_ITEMS = 10_000
MAX_EXPONENT = 256

# Truthy strings of django-environ's `Env.bool` and python-decouple's boolean cast.
DJANGO_ENV_TRUE = ("true", "on", "ok", "y", "yes", "1")
DECOUPLE_BOOLEANS = {"1": True, "yes": True, "true": True, "on": True, "y": True, "t": True,
                     "0": False, "no": False, "false": False, "off": False, "n": False, "f": False, "": False}

BIN_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
    ast.BitXor: operator.xor,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
}

COMPARE_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

SAFE_BUILTINS: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "dict": dict,
    "list": list,
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "round": round,
    "sorted": sorted,
}

BUILTIN_NAMES = frozenset(name for name in dir(builtins) if not name.startswith("_"))

SAFE_METHODS: dict[type, frozenset[str]] = {
    str: frozenset({"lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit", "startswith",
                    "endswith", "replace", "casefold", "title", "capitalize", "isdigit", "isnumeric",
                    "join", "removeprefix", "removesuffix"}),
    dict: frozenset({"get", "keys", "values", "items", "copy"}),
    list: frozenset({"copy", "count", "index"}),
    tuple: frozenset({"count", "index"}),
}

CONDITIONAL_BLOCKS: dict[type, str] = {
    ast.If: "an `if` block",
    ast.For: "a `for` loop",
    ast.AsyncFor: "a `for` loop",
    ast.While: "a `while` loop",
    ast.Try: "a `try` block",
    ast.Match: "a `match` block",
}
if hasattr(ast, "TryStar"):
    CONDITIONAL_BLOCKS[ast.TryStar] = "a `try` block"


@dataclass
class Context:
    """State shared while reading one project: search roots, environment, caches and problems."""

    roots: list[Path]
    environ: dict[str, str | None]
    problems: list[Problem] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)
    modules: dict[str, UserModule] = field(default_factory=dict)
    in_progress: set[str] = field(default_factory=set)
    apps: list[AppObj] = field(default_factory=list)
    parsed: dict[Path, ParsedFile | None] = field(default_factory=dict)
    base_dir: Path | None = None

    def display(self, path: Path) -> str:
        """Show a file relative to `base_dir` when it is below it, else by its absolute path.

        Without `base_dir`, paths are relative to the first root that contains them.
        """
        if self.base_dir is not None:
            try:
                return path.resolve().relative_to(self.base_dir.resolve()).as_posix()
            except ValueError:
                return path.resolve().as_posix()
        for root in self.roots:
            try:
                return path.resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                continue
        return path.as_posix()

    def parse(self, path: Path) -> ParsedFile | None:
        """Parse a file once; problems are recorded the first time only."""
        if path in self.parsed:
            return self.parsed[path]
        display = self.display(path)
        parsed, problem = read_python(path, display)
        self.parsed[path] = parsed
        if display not in self.files_read:
            self.files_read.append(display)
        if problem is not None:
            self.problems.append(problem)
        return parsed

    def load_module(self, dotted: str) -> UserModule | None:
        """Evaluate a project module once, or return None when no root has it.

        A module that is being evaluated (an import cycle) comes back as it is so
        far, as Python returns a partly initialised module.
        """
        if dotted in self.modules:
            return self.modules[dotted]
        found = find_module(dotted, self.roots)
        if found is None:
            if is_package_dir(dotted, self.roots):
                module = UserModule(dotted, None, True, Scope())
                self.modules[dotted] = module
                return module
            return None
        path, is_package = found
        module = UserModule(dotted, self.display(path), is_package, Scope(), Loc(self.display(path), 1, 1))
        self.modules[dotted] = module
        if len(self.in_progress) >= MAX_MODULE_DEPTH:
            module.scope.taint = Unknown(f"imports nest deeper than {MAX_MODULE_DEPTH} modules at {dotted}")
            return module
        parsed = self.parse(path)
        if parsed is None:
            module.scope.taint = Unknown(f"{module.file} could not be read")
            return module
        self.in_progress.add(dotted)
        try:
            ModuleEval(self, parsed, dotted, is_package, module.scope).run()
        except (RecursionError, MemoryError) as error:
            module.scope.taint = Unknown(f"{module.file} is too deeply nested to read ({type(error).__name__})")
        finally:
            self.in_progress.discard(dotted)
        return module


class ModuleEval:
    """Evaluate the statements of one module (or class body) into a `Scope`."""

    def __init__(
        self,
        ctx: Context,
        parsed: ParsedFile,
        module: str,
        is_package: bool,
        scope: Scope,
        outer: Scope | None = None,
    ) -> None:
        self.ctx = ctx
        self.parsed = parsed
        self.module = module
        self.is_package = is_package
        self.scope = scope
        self.outer = outer
        self.condition: str | None = None
        self.depth = 0

    # ---- statements -------------------------------------------------------------

    def run(self, body: list[ast.stmt] | None = None) -> Scope:
        for statement in self.parsed.tree.body if body is None else body:
            self.statement(statement)
        return self.scope

    def statement(self, node: ast.stmt) -> None:
        try:
            self._statement(node)
        except (RecursionError, MemoryError) as error:
            self.ctx.problems.append(
                Problem("unreadable", f"statement too complex to read ({type(error).__name__})", self.parsed.loc(node))
            )

    def _statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            value = self.expr(node.value)
            for target in node.targets:
                self.assign(target, value, node)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            self.assign(node.target, self.expr(node.value), node)
        elif isinstance(node, ast.AugAssign):
            combined = ast.BinOp(left=node.target, op=node.op, right=node.value)
            ast.copy_location(combined, node)
            self.assign(node.target, self.expr(combined), node)
        elif isinstance(node, ast.Expr):
            self.expr(node.value)
        elif isinstance(node, ast.Import):
            self.import_(node)
        elif isinstance(node, ast.ImportFrom):
            self.import_from(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.scope.bind(node.name, Binding(Ev(FuncObj(node.name, self.parsed.loc(node))), self.parsed.loc(node), "callable"))
        elif isinstance(node, ast.ClassDef):
            self.class_def(node)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expr(item.context_expr)
            for inner in node.body:
                self.statement(inner)
        elif type(node) in CONDITIONAL_BLOCKS:
            self.conditional(node, CONDITIONAL_BLOCKS[type(node)])

    def conditional(self, node: ast.stmt, what: str) -> None:
        saved = self.condition
        self.condition = self.condition or f"{what} at line {node.lineno}"
        try:
            for field_name in ("body", "orelse", "finalbody"):
                for inner in getattr(node, field_name, []) or []:
                    self.statement(inner)
            for handler in getattr(node, "handlers", []) or []:
                for inner in handler.body:
                    self.statement(inner)
            for case in getattr(node, "cases", []) or []:
                for inner in case.body:
                    self.statement(inner)
        finally:
            self.condition = saved

    def conditional_value(self, value: Ev, loc: Loc) -> Ev:
        if self.condition is None or not is_data(value.value):
            return value
        reason = f"assigned inside {self.condition}; which value applies cannot be decided statically"
        return Ev(Unknown(reason, loc), value.envs)

    def bind(self, name: str, value: Ev, loc: Loc, kind: str = "value") -> None:
        if kind == "value":
            value = self.conditional_value(value, loc)
            if isinstance(value.value, (ClassObj, FuncObj, ExtRef, UserModule, BoundMethod, DecoupleConfig)):
                kind = "callable"
        self.scope.bind(name, Binding(value, loc, kind))  # type: ignore[arg-type]

    def assign(self, target: ast.expr, value: Ev, statement: ast.stmt) -> None:
        loc = self.parsed.loc(target)
        if isinstance(target, ast.Name):
            if isinstance(value.value, AppObj) and value.value.variable is None:
                value.value.variable = target.id
            self.bind(target.id, value, loc)
        elif isinstance(target, (ast.Tuple, ast.List)):
            self.assign_unpacked(target, value, statement)
        elif isinstance(target, ast.Attribute):
            base = self.expr(target.value).value
            if isinstance(base, AppConf):
                self.app_set(base.app, target.attr, value, loc)
        elif isinstance(target, ast.Subscript):
            self.assign_item(target, value, loc)

    def assign_unpacked(self, target: ast.Tuple | ast.List, value: Ev, statement: ast.stmt) -> None:
        items = value.value if isinstance(value.value, (tuple, list)) else None
        plain = all(isinstance(element, ast.Name) for element in target.elts)
        for index, element in enumerate(target.elts):
            if items is not None and plain and len(items) == len(target.elts):
                self.assign(element, Ev(items[index], value.envs), statement)
            else:
                reason = "assigned by unpacking a value that cannot be split statically"
                self.assign(element, unknown(reason, self.parsed.loc(element), value.envs), statement)

    def assign_item(self, target: ast.Subscript, value: Ev, loc: Loc) -> None:
        base = self.expr(target.value).value
        key = self.expr(target.slice)
        if isinstance(base, AppConf):
            if isinstance(key.value, str):
                self.app_set(base.app, key.value, value, loc)
            else:
                self.app_taint(base.app, "app.conf[...] is assigned with a key that cannot be known", loc)
            return
        if isinstance(base, ExtRef) and base.path == "os.environ":
            if isinstance(key.value, str) and self.condition is None:
                self.ctx.environ[key.value] = value.value if isinstance(value.value, str) else None
            return
        if isinstance(target.value, ast.Name) and isinstance(base, dict):
            binding = self.scope.get(target.value.id)
            if binding is None:
                return
            updated = dict(base)
            if key.known:
                try:
                    updated[key.value] = self.conditional_value(value, loc).value
                except TypeError:
                    return
            else:
                updated = Unknown("a key of this dict is assigned with a key that cannot be known", loc)  # type: ignore[assignment]
            envs = merge_envs(binding.ev, value, key)
            self.scope.bind(target.value.id, Binding(Ev(updated, envs), binding.loc, binding.kind))

    def class_def(self, node: ast.ClassDef) -> None:
        loc = self.parsed.loc(node)
        bases = [self.expr(base).value for base in node.bases]
        class_scope = Scope()
        inner = ModuleEval(self.ctx, self.parsed, self.module, self.is_package, class_scope, outer=self.scope)
        inner.condition = self.condition
        inner.run(node.body)
        obj = ClassObj(node.name, self.module, loc, class_scope, bases)
        self.scope.bind(node.name, Binding(Ev(obj), loc, "class"))

    # ---- imports ----------------------------------------------------------------

    def import_(self, node: ast.Import) -> None:
        loc = self.parsed.loc(node)
        for alias in node.names:
            if alias.asname:
                self.bind(alias.asname, Ev(self.module_ref(alias.name)), loc, "module")
            else:
                top = alias.name.split(".")[0]
                self.module_ref(alias.name)
                self.bind(top, Ev(self.module_ref(top)), loc, "module")

    def module_ref(self, dotted: str) -> Any:
        module = self.ctx.load_module(dotted)
        return module if module is not None else ExtRef(dotted)

    def import_from(self, node: ast.ImportFrom) -> None:
        loc = self.parsed.loc(node)
        source = resolve_relative(self.module, self.is_package, node.level, node.module)
        if source is None:
            return
        module = self.ctx.load_module(source)
        for alias in node.names:
            if alias.name == "*":
                self.star_import(source, module, loc)
                continue
            name = alias.asname or alias.name
            if module is None:
                self.bind(name, Ev(ExtRef(f"{source}.{alias.name}")), loc, "import")
                continue
            binding = module.scope.get(alias.name)
            if binding is not None:
                kind = "import" if binding.kind in ("callable", "class", "module", "import") else "value"
                value = binding.ev if self.condition is None else self.conditional_value(binding.ev, loc)
                self.scope.bind(name, Binding(value, binding.loc, kind))  # type: ignore[arg-type]
                continue
            submodule = self.ctx.load_module(f"{source}.{alias.name}")
            if submodule is not None:
                self.bind(name, Ev(submodule), loc, "module")
            elif module.scope.taint is not None:
                self.bind(name, Ev(module.scope.taint), loc)
            else:
                reason = f"`{alias.name}` is not defined at module level in {module.file or source}"
                self.bind(name, unknown(reason, loc), loc)

    def star_import(self, source: str, module: UserModule | None, loc: Loc) -> None:
        if module is None or module.file is None:
            if self.condition is not None:
                # NOTE: a star import inside `try`/`if` of a module missing from the
                # project is taken to fail, because such modules are usually local
                # settings kept out of the repository. Its names stay as they were.
                return
            reason = f"`from {source} import *` at line {loc.line} could not be read, so any name may be replaced"
            self.scope.mark_tainted(Unknown(reason, loc))
            return
        exported = module.scope.get("__all__")
        names = None
        if exported is not None and isinstance(exported.ev.value, (list, tuple)):
            names = [name for name in exported.ev.value if isinstance(name, str)]
        for name, binding in list(module.scope.bindings.items()):
            if names is not None and name not in names:
                continue
            if names is None and name.startswith("_"):
                continue
            value = binding.ev if self.condition is None else self.conditional_value(binding.ev, loc)
            self.scope.bind(name, Binding(value, binding.loc, binding.kind))
        if module.scope.taint is not None:
            self.scope.mark_tainted(module.scope.taint)

    # ---- expressions ------------------------------------------------------------

    def expr(self, node: ast.expr) -> Ev:
        self.depth += 1
        try:
            if self.depth > MAX_EXPR_DEPTH:
                return unknown("expression nests too deeply to read", self.parsed.loc(node))
            return self._expr(node)
        except (RecursionError, MemoryError, OverflowError) as error:
            return unknown(f"expression too large to evaluate ({type(error).__name__})", self.parsed.loc(node))
        finally:
            self.depth -= 1

    def _expr(self, node: ast.expr) -> Ev:
        loc = self.parsed.loc(node)
        if isinstance(node, ast.Constant):
            return Ev(node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id, loc)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return self.sequence(node)
        if isinstance(node, ast.Dict):
            return self.dict_display(node)
        if isinstance(node, ast.JoinedStr):
            return self.fstring(node)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.UnaryOp):
            return self.unaryop(node)
        if isinstance(node, ast.BoolOp):
            return self.boolop(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.IfExp):
            test = self.expr(node.test)
            if not test.known:
                return unknown("the condition of this `if` expression cannot be decided statically", loc, test.envs)
            chosen = self.expr(node.body if test.value else node.orelse)
            return Ev(chosen.value, merge_envs(test, chosen))

        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Lambda):
            return Ev(FuncObj("<lambda>", loc))

        return unknown(f"{self.parsed.segment(node)!r} cannot be evaluated statically", loc)

    def name(self, name: str, loc: Loc) -> Ev:
        for scope in (self.scope, self.outer):
            if scope is None:
                continue
            binding = scope.get(name)
            if binding is not None:
                return binding.ev
            if scope.taint is not None:
                return Ev(scope.taint)
        if name in BUILTIN_NAMES:
            return Ev(ExtRef(f"builtins.{name}"))
        return unknown(f"`{name}` is not defined at module level before line {loc.line}", loc)

    def sequence(self, node: ast.List | ast.Tuple | ast.Set) -> Ev:
        items: list[Any] = []
        parts: list[Ev] = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                inner = self.expr(element.value)
                parts.append(inner)
                if isinstance(inner.value, (list, tuple, set, frozenset)):
                    items.extend(inner.value)
                else:
                    return unknown("a starred item cannot be expanded statically", self.parsed.loc(element), inner.envs)
                continue
            value = self.expr(element)
            parts.append(value)
            items.append(value.value)
        envs = merge_envs(*parts)
        if isinstance(node, ast.Tuple):
            return Ev(tuple(items), envs)
        if isinstance(node, ast.Set):
            try:
                return Ev(set(items), envs)
            except TypeError:
                return unknown("a set of unhashable values", self.parsed.loc(node), envs)
        return Ev(items, envs)

    def dict_display(self, node: ast.Dict) -> Ev:
        result: dict[Any, Any] = {}
        parts: list[Ev] = []
        for key_node, value_node in zip(node.keys, node.values):
            value = self.expr(value_node)
            parts.append(value)
            if key_node is None:
                if isinstance(value.value, dict):
                    result.update(value.value)
                    continue
                return unknown("`**` inside this dict cannot be expanded statically", self.parsed.loc(value_node), value.envs)
            key = self.expr(key_node)
            parts.append(key)
            if not key.known:
                return unknown("a key of this dict cannot be known statically", self.parsed.loc(key_node), merge_envs(*parts))
            try:
                result[key.value] = value.value
            except TypeError:
                return unknown("a dict key is not hashable", self.parsed.loc(key_node))
        return Ev(result, merge_envs(*parts))

    def fstring(self, node: ast.JoinedStr) -> Ev:
        pieces: list[str] = []
        parts: list[Ev] = []
        for value_node in node.values:
            if isinstance(value_node, ast.Constant):
                pieces.append(str(value_node.value))
                continue
            if not isinstance(value_node, ast.FormattedValue):
                return unknown("f-string part cannot be evaluated", self.parsed.loc(value_node))
            value = self.expr(value_node.value)
            parts.append(value)
            if not value.known:
                reason = f"f-string uses {self.parsed.segment(value_node.value)}, which cannot be known statically"
                return unknown(reason, self.parsed.loc(value_node), merge_envs(*parts))
            spec = ""
            if value_node.format_spec is not None:
                spec_ev = self.fstring(value_node.format_spec)  # type: ignore[arg-type]
                if not isinstance(spec_ev.value, str) or re.search(r"\d{4,}", spec_ev.value):
                    return unknown("f-string format spec cannot be applied statically", self.parsed.loc(value_node))
                spec = spec_ev.value
            converted = value.value
            try:
                if value_node.conversion == ord("r"):
                    converted = repr(converted)
                elif value_node.conversion == ord("s"):
                    converted = str(converted)
                elif value_node.conversion == ord("a"):
                    converted = ascii(converted)
                pieces.append(format(converted, spec))
            except (TypeError, ValueError):
                return unknown("f-string formatting fails for this value", self.parsed.loc(value_node))
        text = "".join(pieces)
        if len(text) > MAX_STRING:
            return unknown("string too long to evaluate", self.parsed.loc(node))
        return Ev(text, merge_envs(*parts))

    def binop(self, node: ast.BinOp) -> Ev:
        left = self.expr(node.left)
        right = self.expr(node.right)
        envs = merge_envs(left, right)
        loc = self.parsed.loc(node)
        if not (left.known and right.known):
            return unknown(f"{self.parsed.segment(node)} cannot be computed statically", loc, envs)
        operation = BIN_OPS.get(type(node.op))
        if operation is None or not self.size_ok(node.op, left.value, right.value):
            return unknown(f"{self.parsed.segment(node)} is not computed statically", loc, envs)
        try:
            return Ev(operation(left.value, right.value), envs)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, MemoryError) as error:
            return unknown(f"{self.parsed.segment(node)} raises {type(error).__name__}", loc, envs)

    @staticmethod
    def size_ok(op: ast.operator, left: Any, right: Any) -> bool:
        """Refuse operations whose result could be huge (`'a' * 10**9`, `10 ** 10**6`)."""
        if isinstance(op, ast.Pow):
            return not (isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT)
        if isinstance(op, ast.LShift):
            return not (isinstance(right, int) and right > MAX_EXPONENT * 4)
        if isinstance(op, ast.Mult):
            for count, seq in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(count, int):
                    return len(seq) * max(count, 0) <= MAX_STRING
        if isinstance(op, ast.Add) and isinstance(left, (str, bytes, list, tuple)):
            return len(left) + len(right) <= MAX_STRING if hasattr(right, "__len__") else True
        return True

    def unaryop(self, node: ast.UnaryOp) -> Ev:
        operand = self.expr(node.operand)
        loc = self.parsed.loc(node)
        if not operand.known:
            return unknown(f"{self.parsed.segment(node)} cannot be computed statically", loc, operand.envs)
        try:
            if isinstance(node.op, ast.Not):
                return Ev(not operand.value, operand.envs)
            if isinstance(node.op, ast.USub):
                return Ev(-operand.value, operand.envs)
            if isinstance(node.op, ast.UAdd):
                return Ev(+operand.value, operand.envs)
            return Ev(~operand.value, operand.envs)
        except TypeError:
            return unknown(f"{self.parsed.segment(node)} raises TypeError", loc, operand.envs)

    def boolop(self, node: ast.BoolOp) -> Ev:
        parts: list[Ev] = []
        for value_node in node.values:
            value = self.expr(value_node)
            parts.append(value)
            if not value.known:
                return unknown(f"{self.parsed.segment(node)} cannot be decided statically", self.parsed.loc(node), merge_envs(*parts))
            decided = bool(value.value) if isinstance(node.op, ast.Or) else not value.value
            if decided:
                return Ev(value.value, merge_envs(*parts))
        return Ev(parts[-1].value, merge_envs(*parts))

    def compare(self, node: ast.Compare) -> Ev:
        left = self.expr(node.left)
        parts = [left]
        loc = self.parsed.loc(node)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.expr(right_node)
            parts.append(right)
            if not (left.known and right.known):
                return unknown(f"{self.parsed.segment(node)} cannot be decided statically", loc, merge_envs(*parts))
            try:
                outcome = COMPARE_OPS[type(op)](left.value, right.value)
            except TypeError:
                return unknown(f"{self.parsed.segment(node)} raises TypeError", loc, merge_envs(*parts))
            if not outcome:
                return Ev(False, merge_envs(*parts))
            left = right
        return Ev(True, merge_envs(*parts))

    def attribute(self, node: ast.Attribute) -> Ev:
        base = self.expr(node.value)
        value = base.value
        loc = self.parsed.loc(node)
        if isinstance(value, ExtRef):
            return Ev(ExtRef(f"{value.path}.{node.attr}"))
        if isinstance(value, UserModule):
            binding = value.scope.get(node.attr)
            if binding is not None:
                return binding.ev
            submodule = self.ctx.load_module(f"{value.name}.{node.attr}")
            if submodule is not None:
                return Ev(submodule)
            if value.scope.taint is not None:
                return Ev(value.scope.taint)
            return unknown(f"`{node.attr}` is not defined in {value.file or value.name}", loc)
        if isinstance(value, ClassObj):
            binding = value.scope.get(node.attr)
            if binding is not None:
                return binding.ev
            return unknown(f"`{node.attr}` is not a class attribute of {value.name}", loc)
        if isinstance(value, AppObj):
            if node.attr == "conf":
                return Ev(AppConf(value))
            return Ev(BoundMethod(value, node.attr))
        if isinstance(value, (AppConf, DjangoEnv)):
            return Ev(BoundMethod(value, node.attr))
        if is_data(value) and base.known and node.attr in SAFE_METHODS.get(type(value), ()):
            return Ev(BoundMethod(value, node.attr), base.envs)
        return unknown(f"{self.parsed.segment(node)} cannot be evaluated statically", loc, base.envs)

    def subscript(self, node: ast.Subscript) -> Ev:
        base = self.expr(node.value)
        loc = self.parsed.loc(node)
        if isinstance(base.value, ExtRef) and base.value.path == "os.environ":
            return self.env_read(self.expr(node.slice), None, node, strict=True)
        if isinstance(node.slice, ast.Slice):
            return unknown("slices are not evaluated statically", loc, base.envs)
        key = self.expr(node.slice)
        envs = merge_envs(base, key)
        if not (base.known and key.known):
            return unknown(f"{self.parsed.segment(node)} cannot be evaluated statically", loc, envs)
        try:
            return Ev(base.value[key.value], envs)
        except (KeyError, IndexError, TypeError) as error:
            return unknown(f"{self.parsed.segment(node)} raises {type(error).__name__}", loc, envs)

    # ---- calls ------------------------------------------------------------------

    def call(self, node: ast.Call) -> Ev:
        func = self.expr(node.func)
        args: list[Ev] = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                return self.call_unknown_arguments(node, func)
            args.append(self.expr(arg))
        kwargs: dict[str, Ev] = {}
        kwarg_locs: dict[str, Loc] = {}
        for keyword in node.keywords:
            value = self.expr(keyword.value)
            if keyword.arg is None:
                if isinstance(value.value, dict) and all(isinstance(key, str) for key in value.value):
                    for key, item in value.value.items():
                        kwargs[key] = Ev(item, value.envs)
                        kwarg_locs[key] = self.parsed.loc(keyword.value)
                    continue
                return self.call_unknown_arguments(node, func)
            kwargs[keyword.arg] = value
            kwarg_locs[keyword.arg] = self.parsed.loc(keyword.value)
        return self.dispatch(node, func.value, args, kwargs, kwarg_locs)

    def call_unknown_arguments(self, node: ast.Call, func: Ev) -> Ev:
        loc = self.parsed.loc(node)
        target = func.value
        if isinstance(target, BoundMethod) and isinstance(target.obj, AppConf) and target.name == "update":
            self.app_taint(target.obj.app, "app.conf.update() is called with arguments that cannot be expanded", loc)
        if isinstance(target, ExtRef) and target.path.endswith("Celery"):
            app = self.new_app(node, {}, {})
            app.ops.append(ConfigOp("taint", "", unknown("Celery(...) gets keyword arguments that cannot be expanded", loc), loc))
            return Ev(app)
        return unknown(f"{self.parsed.segment(node)} has arguments that cannot be expanded statically", loc)

    def dispatch(self, node: ast.Call, target: Any, args: list[Ev], kwargs: dict[str, Ev], kwarg_locs: dict[str, Loc]) -> Ev:
        loc = self.parsed.loc(node)
        if isinstance(target, ExtRef):
            return self.call_external(node, target.path, args, kwargs, kwarg_locs)
        if isinstance(target, BoundMethod):
            return self.call_method(node, target, args, kwargs, kwarg_locs)
        if isinstance(target, DjangoEnv):
            return self.django_env_read(target, None, args, kwargs, node)
        if isinstance(target, DecoupleConfig):
            return self.decouple_read(args, kwargs, node)
        return unknown(f"the call {self.parsed.segment(node)} cannot be evaluated statically", loc, merge_envs(*args, *kwargs.values()))

    def call_external(self, node: ast.Call, path: str, args: list[Ev], kwargs: dict[str, Ev], kwarg_locs: dict[str, Loc]) -> Ev:
        loc = self.parsed.loc(node)
        envs = merge_envs(*args, *kwargs.values())
        short = path.rsplit(".", 1)[-1]
        if path in ("os.getenv", "os.environ.get"):
            default = args[1] if len(args) > 1 else kwargs.get("default")
            return self.env_read(args[0] if args else kwargs.get("key", Ev(None)), default, node)
        if path == "os.environ.setdefault":
            return self.env_setdefault(args, node)
        if path.startswith("builtins.") and short in SAFE_BUILTINS and path.count(".") == 1:
            return self.call_builtin(node, SAFE_BUILTINS[short], args, kwargs)
        if path in ("datetime.timedelta", "datetime.datetime.timedelta"):
            return self.call_builtin(node, timedelta, args, kwargs)
        if short == "Celery" and (path == "celery.Celery" or path.startswith("celery.")):
            return Ev(self.new_app(node, kwargs, kwarg_locs))
        if path in ("environ.Env", "environ.environ.Env"):
            return Ev(DjangoEnv(self.django_scheme(kwargs)))
        if path == "decouple.config" or path == "decouple.AutoConfig" or path == "decouple.Config":
            if short == "config":
                return self.decouple_read(args, kwargs, node)
            return Ev(DecoupleConfig())
        return unknown(f"the call {self.parsed.segment(node)} cannot be evaluated statically", loc, envs)

    def call_builtin(self, node: ast.Call, function: Callable[..., Any], args: list[Ev], kwargs: dict[str, Ev]) -> Ev:
        loc = self.parsed.loc(node)
        envs = merge_envs(*args, *kwargs.values())
        if not all(arg.known for arg in args) or not all(value.known for value in kwargs.values()):
            reason = f"{self.parsed.segment(node)} depends on a value that cannot be known statically"
            return unknown(reason, loc, envs)
        if function is int and args and isinstance(args[0].value, str) and len(args[0].value) > 100:
            return unknown("int() of a very long string is not evaluated", loc, envs)
        try:
            result = function(*[arg.value for arg in args], **{key: value.value for key, value in kwargs.items()})
        except (TypeError, ValueError, OverflowError, KeyError) as error:
            reason = f"{self.parsed.segment(node)} raises {type(error).__name__} when the module is imported"
            return unknown(reason, loc, envs)
        return Ev(result, envs)

    def call_method(self, node: ast.Call, method: BoundMethod, args: list[Ev], kwargs: dict[str, Ev], kwarg_locs: dict[str, Loc]) -> Ev:
        loc = self.parsed.loc(node)
        obj = method.obj
        if isinstance(obj, AppObj):
            return self.app_method(node, obj, method.name, args, kwargs)
        if isinstance(obj, AppConf):
            return self.conf_method(node, obj.app, method.name, args, kwargs, kwarg_locs)
        if isinstance(obj, DjangoEnv):
            return self.django_env_read(obj, method.name, args, kwargs, node)
        envs = merge_envs(*args, *kwargs.values())
        if not all(arg.known for arg in args) or not all(value.known for value in kwargs.values()):
            return unknown(f"{self.parsed.segment(node)} depends on a value that cannot be known statically", loc, envs)
        try:
            result = getattr(obj, method.name)(*[arg.value for arg in args], **{k: v.value for k, v in kwargs.items()})
        except (TypeError, ValueError, AttributeError) as error:
            return unknown(f"{self.parsed.segment(node)} raises {type(error).__name__}", loc, envs)
        if isinstance(result, type({}.keys())) or isinstance(result, type({}.values())) or isinstance(result, type({}.items())):
            result = list(result)
        if isinstance(result, str) and len(result) > MAX_STRING:
            return unknown("string too long to evaluate", loc, envs)
        return Ev(result, envs)

    # ---- environment ------------------------------------------------------------

    def env_read(self, var: Ev, default: Ev | None, node: ast.AST, strict: bool = False) -> Ev:
        loc = self.parsed.loc(node)
        if not isinstance(var.value, str):
            return unknown("the name of the environment variable cannot be known statically", loc, var.envs)
        name = var.value
        if name in self.ctx.environ:
            value = self.ctx.environ[name]
            if value is None:
                reason = f"{name} is passed through from the host environment, so its value is not known"
                return unknown(reason, loc, (EnvRead(name, True),))
            return Ev(value, (EnvRead(name, True),))
        if strict:
            reason = f"{name} is not set, so reading os.environ[{name!r}] raises KeyError on import"
            return unknown(reason, loc, (EnvRead(name, False),))
        if default is None:
            return Ev(None, (EnvRead(name, False),))
        return Ev(default.value, (EnvRead(name, False),) + default.envs)

    def env_setdefault(self, args: list[Ev], node: ast.AST) -> Ev:
        if not args or not isinstance(args[0].value, str):
            return unknown("os.environ.setdefault() with a name that cannot be known", self.parsed.loc(node))
        name = args[0].value
        default = args[1] if len(args) > 1 else Ev(None)
        if self.condition is None and name not in self.ctx.environ and isinstance(default.value, str):
            self.ctx.environ[name] = default.value
        return self.env_read(Ev(name), default, node)

    def django_scheme(self, kwargs: dict[str, Ev]) -> dict[str, tuple[Any, Any]]:
        scheme: dict[str, tuple[Any, Any]] = {}
        for name, value in kwargs.items():
            spec = value.value
            if isinstance(spec, tuple) and len(spec) == 2:
                scheme[name] = (spec[0], spec[1])
            elif isinstance(spec, tuple) and len(spec) == 1:
                scheme[name] = (spec[0], _NOTSET)
            else:
                scheme[name] = (spec, _NOTSET)
        return scheme

    def django_env_read(self, env: DjangoEnv, method: str | None, args: list[Ev], kwargs: dict[str, Ev], node: ast.Call) -> Ev:
        """Model django-environ: `env('X', default=..., cast=...)`, `env.bool('X', default=...)`..."""
        loc = self.parsed.loc(node)
        var = args[0] if args else kwargs.get("var", Ev(None))
        if not isinstance(var.value, str):
            return unknown("the name of the environment variable cannot be known statically", loc)
        name = var.value
        cast: Any = _NOTSET
        if method is None:
            if "cast" in kwargs:
                cast = kwargs["cast"].value
            elif len(args) > 1:
                cast = args[1].value
        else:
            # env.list(), env.json(), env.url()... get a cast this reader does not model.
            cast = CAST_BY_METHOD.get(method, ExtRef(f"environ.{method}"))
        default: Any = kwargs["default"].value if "default" in kwargs else _NOTSET
        if method is not None and default is _NOTSET and len(args) > 1:
            default = args[1].value
        if name in env.scheme:
            scheme_cast, scheme_default = env.scheme[name]
            cast = scheme_cast if cast is _NOTSET or cast is None else cast
            default = scheme_default if default is _NOTSET else default
        if cast is _NOTSET or cast is None:
            cast = _NOTSET if default is _NOTSET or default is None else ExtRef(f"builtins.{type(default).__name__}")

        if name in self.ctx.environ:
            raw = self.ctx.environ[name]
            if raw is None:
                reason = f"{name} is passed through from the host environment, so its value is not known"
                return unknown(reason, loc, (EnvRead(name, True),))
            return self.cast_value(raw, cast, name, loc, django=True)
        if default is _NOTSET:
            reason = f"{name} is not set and has no default, so django-environ raises ImproperlyConfigured"
            return unknown(reason, loc, (EnvRead(name, False),))
        # django-environ returns a default as written, without casting it.
        return Ev(default, (EnvRead(name, False),))

    def decouple_read(self, args: list[Ev], kwargs: dict[str, Ev], node: ast.Call) -> Ev:
        """Model python-decouple's `config('X', default=..., cast=...)`, which casts defaults too."""
        loc = self.parsed.loc(node)
        var = args[0] if args else kwargs.get("option", Ev(None))
        if not isinstance(var.value, str):
            return unknown("the name of the environment variable cannot be known statically", loc)
        name = var.value
        cast: Any = _NOTSET
        if "cast" in kwargs:
            cast = kwargs["cast"].value
        elif len(args) > 2:
            cast = args[2].value
        default_ev = kwargs.get("default") or (args[1] if len(args) > 1 else None)
        if name in self.ctx.environ:
            raw = self.ctx.environ[name]
            if raw is None:
                reason = f"{name} is passed through from the host environment, so its value is not known"
                return unknown(reason, loc, (EnvRead(name, True),))
            return self.cast_value(raw, cast, name, loc, django=False)
        if default_ev is None:
            # NOTE: decouple also reads a settings.ini or .env file; those files are not read here.
            reason = f"{name} is not set and has no default, so decouple raises UndefinedValueError"
            return unknown(reason, loc, (EnvRead(name, False),))
        if not default_ev.known:
            return Ev(default_ev.value, (EnvRead(name, False),) + default_ev.envs)
        result = self.cast_value(default_ev.value, cast, name, loc, django=False)
        return Ev(result.value, (EnvRead(name, False),))

    def cast_value(self, raw: Any, cast: Any, name: str, loc: Loc, django: bool) -> Ev:
        envs = (EnvRead(name, True),)
        if cast is _NOTSET or cast is None:
            return Ev(raw, envs)
        cast_name = cast.path.rsplit(".", 1)[-1] if isinstance(cast, ExtRef) else None
        if cast_name == "bool":
            if isinstance(raw, bool):
                return Ev(raw, envs)
            text = str(raw).strip().lower()
            if django:
                try:
                    return Ev(int(text) != 0, envs)
                except ValueError:
                    return Ev(text in DJANGO_ENV_TRUE, envs)
            if text in DECOUPLE_BOOLEANS:
                return Ev(DECOUPLE_BOOLEANS[text], envs)
            return unknown(f"{name}={raw!r} is not a boolean python-decouple accepts (ValueError)", loc, envs)
        if cast_name in ("int", "float", "str"):
            try:
                return Ev({"int": int, "float": float, "str": str}[cast_name](raw), envs)
            except (TypeError, ValueError):
                return unknown(f"{name}={raw!r} cannot be converted with {cast_name}() (ValueError)", loc, envs)
        return unknown(f"{name} is converted with a cast that is not evaluated statically", loc, envs)

    # ---- the Celery app ---------------------------------------------------------

    def new_app(self, node: ast.Call, kwargs: dict[str, Ev], kwarg_locs: dict[str, Loc]) -> AppObj:
        loc = self.parsed.loc(node)
        app = AppObj(self.module, self.parsed.display, loc)
        self.ctx.apps.append(app)
        changes = kwargs.get("changes")
        if changes is not None:
            if isinstance(changes.value, dict):
                for key, value in changes.value.items():
                    if isinstance(key, str):
                        app.ops.append(ConfigOp("set", key, self.conditional_value(Ev(value, changes.envs), kwarg_locs["changes"]), kwarg_locs["changes"]))
            else:
                app.ops.append(ConfigOp("taint", "", unknown("`changes=` cannot be evaluated statically", kwarg_locs["changes"]), kwarg_locs["changes"]))
        for keyword, setting in (("broker", "broker_url"), ("backend", "result_backend"), ("include", "include")):
            if keyword in kwargs:
                self.auto_set(app, setting, kwargs[keyword], kwarg_locs[keyword])
        for keyword, value in kwargs.items():
            if keyword in CELERY_INIT_PARAMETERS:
                continue
            self.auto_set(app, keyword, value, kwarg_locs[keyword])
        if "config_source" in kwargs:
            silent = kwargs.get("config_source_silent", Ev(False)).value is True
            app.sources.append(ConfigSource("object", kwargs["config_source"], kwarg_locs["config_source"], silent))
            app.config_loc = kwarg_locs["config_source"]
        if "namespace" in kwargs:
            app.namespace = self.conditional_value(kwargs["namespace"], kwarg_locs["namespace"])
        if "task_cls" in kwargs:
            app.task_cls = kwargs["task_cls"]
        return app

    def auto_set(self, app: AppObj, key: str, value: Ev, loc: Loc) -> None:
        # Celery stores constructor keywords only when they are not None.
        if value.known and value.value is None:
            return
        app.ops.append(ConfigOp("set", key, self.conditional_value(value, loc), loc, auto=True))

    def app_set(self, app: AppObj, key: str, value: Ev, loc: Loc, kind: str = "set") -> None:
        app.ops.append(ConfigOp(kind, key, self.conditional_value(value, loc), loc))  # type: ignore[arg-type]

    def app_taint(self, app: AppObj, reason: str, loc: Loc) -> None:
        app.ops.append(ConfigOp("taint", "", unknown(reason, loc), loc))

    def app_method(self, node: ast.Call, app: AppObj, name: str, args: list[Ev], kwargs: dict[str, Ev]) -> Ev:
        loc = self.parsed.loc(node)
        if name in ("config_from_object", "config_from_envvar"):
            source = args[0] if args else kwargs.get("obj", kwargs.get("variable_name", Ev(None)))
            source = self.conditional_value(source, loc) if is_data(source.value) else source
            if self.condition is not None and not is_data(source.value):
                source = unknown(f"configuration loaded inside {self.condition}", loc)
            silent = kwargs.get("silent", Ev(False)).value is True
            kind = "object" if name == "config_from_object" else "envvar"
            app.sources.append(ConfigSource(kind, source, loc, silent))  # type: ignore[arg-type]
            app.config_loc = loc
            namespace = kwargs.get("namespace")
            if namespace is not None and (not namespace.known or namespace.value):
                app.namespace = self.conditional_value(namespace, loc)
        elif name == "add_defaults":
            mapping = args[0] if args else Ev(None)
            if isinstance(mapping.value, dict):
                for key, value in mapping.value.items():
                    if isinstance(key, str):
                        app.defaults_ops.append(ConfigOp("set", key, self.conditional_value(Ev(value, mapping.envs), loc), loc))
            else:
                app.defaults_ops.append(ConfigOp("taint", "", unknown("app.add_defaults() argument cannot be evaluated", loc), loc))
        return unknown(f"the result of app.{name}() is not evaluated", loc)

    def conf_method(self, node: ast.Call, app: AppObj, name: str, args: list[Ev], kwargs: dict[str, Ev], kwarg_locs: dict[str, Loc]) -> Ev:
        loc = self.parsed.loc(node)
        if name == "update":
            for arg in args:
                if isinstance(arg.value, dict):
                    for key, value in arg.value.items():
                        if isinstance(key, str):
                            self.app_set(app, key, Ev(value, arg.envs), self.key_loc(node, key, loc))
                else:
                    self.app_taint(app, "app.conf.update() is called with a mapping that cannot be evaluated", loc)
            for key, value in kwargs.items():
                self.app_set(app, key, value, kwarg_locs.get(key, loc))
        elif name == "setdefault" and args and isinstance(args[0].value, str):
            value = args[1] if len(args) > 1 else Ev(None)
            self.app_set(app, args[0].value, value, loc, kind="setdefault")
        elif name == "add_defaults":
            return self.app_method(node, app, name, args, kwargs)
        return unknown(f"the result of app.conf.{name}() is not evaluated", loc)

    def key_loc(self, node: ast.Call, key: str, fallback: Loc) -> Loc:
        """Point at the `'key':` of a dict literal passed to `update()`, when there is one."""
        for arg in node.args:
            if isinstance(arg, ast.Dict):
                for key_node in arg.keys:
                    if isinstance(key_node, ast.Constant) and key_node.value == key:
                        return self.parsed.loc(key_node)
        return fallback


class _NotSet:
    def __repr__(self) -> str:
        return "NOTSET"


_NOTSET: Any = _NotSet()

CAST_BY_METHOD: dict[str, Any] = {
    "bool": ExtRef("builtins.bool"),
    "int": ExtRef("builtins.int"),
    "float": ExtRef("builtins.float"),
    "str": ExtRef("builtins.str"),
}

# Keyword parameters of `Celery.__init__` that are not settings (celery 5.x).
CELERY_INIT_PARAMETERS = frozenset(
    {
        "main", "loader", "backend", "amqp", "events", "log", "control", "set_as_current", "tasks",
        "broker", "include", "changes", "config_source", "fixups", "task_cls", "autofinalize",
        "namespace", "strict_typing", "config_source_silent",
    }
)

