"""Compiling sqlglot expressions into plain Python closures.

Each expression becomes one closure over a *row*: a tuple of records (dicts),
one per FROM/JOIN source of its query level. Literals and parameter values are
captured as values in the closures; no SQL or log text ever becomes Python
source. Predicates are compiled in *truth context*: :func:`compile_truth`
builds a closure that answers "is this expression TRUE?" (or "FALSE?") for
SQL's three-valued logic, so ``AND``/``OR``/``NOT`` short-circuit on plain
Python booleans instead of materialising NULLs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from ..errors import SqlError, UnsupportedSqlError
from . import values as V
from .parse import position

Row = tuple[Any, ...]
RowFn = Callable[[Row], Any]
TruthFn = Callable[[Row], bool]


@dataclass
class Scope:
    """The names visible at one query level.

    ``aliases`` maps each source alias to its position in the row tuple;
    ``parent`` is the enclosing level's scope (for correlated subqueries).
    """

    aliases: dict[str, int]
    tables: list[str]
    parent: Scope | None = None
    context: CompileContext | None = None

    def depth_of_alias(self, name: str) -> tuple[int, int] | None:
        scope: Scope | None = self
        depth = 0
        while scope is not None:
            if name in scope.aliases:
                return depth, scope.aliases[name]
            scope = scope.parent
            depth += 1
        return None

    def at_depth(self, depth: int) -> Scope:
        scope = self
        for _ in range(depth):
            assert scope.parent is not None
            scope = scope.parent
        return scope


@dataclass
class CompileContext:
    """What every compilation in one view shares: its name, SQL location and params."""

    view: str
    path: str | None
    params: Mapping[str, Any]
    used_params: set[str] = field(default_factory=set)
    template: bool = False
    """Planning a template once for all its subscriptions: reading a parameter
    raises :class:`TemplateParam` (see :class:`circuit.sql.plan.BindablePlan`)."""

    def unsupported(self, node: exp.Expression, what: str, hint: str | None = None) -> SqlError:
        line, col = position(node)
        return UnsupportedSqlError(
            what, view=self.view, path=self.path, line=line, col=col, hint=hint
        )

    def error(self, node: exp.Expression, what: str, hint: str | None = None) -> SqlError:
        line, col = position(node)
        return SqlError(what, view=self.view, path=self.path, line=line, col=col, hint=hint)


@dataclass(frozen=True, slots=True)
class ColumnRef:
    """A column resolved to (depth, source position, field path)."""

    depth: int
    position: int
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParamRef:
    name: str
    path: tuple[str, ...]


AtomHook = Callable[[exp.Expression, Scope], RowFn]


class TemplateParam(Exception):
    """A template's parameter is read where only a binding can compile it."""


def mentions_param(node: exp.Expression) -> bool:
    """Whether an expression reads a bound parameter (``$name`` or a placeholder)."""
    for current in node.walk():
        if isinstance(current, exp.Placeholder):
            return True
        if (
            isinstance(current, exp.Column)
            and _is_param_name(current.parts[0] if current.parts else None)
            and current.parts[0].name.lower() != "$parent"
        ):
            return True
    return False


def _is_param_name(ident: exp.Expr | None) -> bool:
    return (
        isinstance(ident, exp.Identifier)
        and not ident.args.get("quoted")
        and ident.name.startswith("$")
        and len(ident.name) > 1
    )


def resolve_column(node: exp.Column, scope: Scope, ctx: CompileContext) -> ColumnRef | ParamRef:
    """Resolve a column reference per SPEC section 2.

    ``alias.field`` reads a source; ``$parent.field`` the parent level's FROM
    record; ``$name`` a parameter; an unqualified name a field of the level's
    only source (``a.b`` reads field ``b`` of object ``a`` when ``a`` is no
    alias in scope).
    """
    idents = [p for p in node.parts if isinstance(p, exp.Identifier)]
    if not idents or isinstance(node.this, exp.Star):
        raise ctx.unsupported(node, "a column reference of this shape is not supported")
    names = [i.name for i in idents]
    head = idents[0]
    if _is_param_name(head):
        if head.name.lower() == "$parent":
            if scope.parent is None:
                raise ctx.error(node, "$parent is used outside a nested subquery")
            if len(scope.parent.tables) != 1:
                raise ctx.unsupported(
                    node,
                    "$parent in a subquery whose parent level has a JOIN",
                    hint="use the parent's qualified column name (alias.field) instead",
                )
            if len(names) < 2:
                raise ctx.error(node, "$parent needs a field: $parent.field")
            return ColumnRef(1, 0, tuple(names[1:]))
        return ParamRef(head.name[1:], tuple(names[1:]))
    if len(names) >= 2:
        found = scope.depth_of_alias(names[0])
        if found is not None:
            return ColumnRef(found[0], found[1], tuple(names[1:]))
    if len(scope.tables) == 1:
        return ColumnRef(0, 0, tuple(names))
    if len(names) >= 2:
        raise ctx.error(node, f"unknown table or alias {names[0]!r}")
    raise ctx.error(
        node,
        f"column {names[0]!r} is ambiguous in a join",
        hint=f"qualify it with the alias of its table (alias.{names[0]})",
    )


def referenced_depths(node: exp.Expression, scope: Scope, ctx: CompileContext) -> set[int]:
    """The scope depths an expression reads (not looking inside subqueries)."""
    depths: set[int] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, exp.Column):
            ref = resolve_column(current, scope, ctx)
            if isinstance(ref, ColumnRef):
                depths.add(ref.depth)
            continue
        if isinstance(current, (exp.Subquery, exp.Select, exp.Exists)):
            depths.add(-1)  # a subquery: only valid where the planner expects it
            continue
        stack.extend(current.iter_expressions())
    return depths


def _path_getter(position_: int, path: tuple[str, ...]) -> RowFn:
    if len(path) == 1:
        field_name = path[0]

        def get_field(row: Row) -> Any:
            record = row[position_]
            return None if record is None else record.get(field_name)

        return get_field

    def get_path(row: Row) -> Any:
        value = row[position_]
        for part in path:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get_path


def _walk_path(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class ExpressionCompiler:
    """Compiles expressions of one query level against its scope."""

    def __init__(
        self,
        scope: Scope,
        ctx: CompileContext,
        atom_hook: AtomHook | None = None,
        base_depth: int = 0,
    ):
        self.scope = scope
        self.ctx = ctx
        self.atom_hook = atom_hook
        # the depth whose row the closures receive (1: the outer side of a correlation)
        self.base_depth = base_depth

    # values ---------------------------------------------------------------
    def value(self, node: exp.Expression) -> RowFn:
        """A closure computing the expression's SQL value for a row."""
        method = getattr(self, f"_v_{type(node).__name__}", None)
        if method is None:
            raise self.ctx.unsupported(node, f"unsupported expression {node.key.upper()}")
        fn: RowFn = method(node)
        return fn

    def constant(self, node: exp.Expression) -> tuple[bool, Any]:
        """(True, value) when the node is a literal or bound parameter."""
        if isinstance(node, exp.Literal):
            return True, _literal(node, self.ctx)
        if isinstance(node, exp.Null):
            return True, None
        if isinstance(node, exp.Boolean):
            return True, 1 if node.this else 0
        if isinstance(node, exp.Neg):
            ok, inner = self.constant(node.this)
            if ok:
                return True, V.neg(inner)
        if isinstance(node, exp.Placeholder) or (
            isinstance(node, exp.Column) and _is_param_name(node.parts[0])
        ):
            ref = self._param(node)
            return True, ref
        if isinstance(node, exp.Paren):
            return self.constant(node.this)
        return False, None

    def _param(self, node: exp.Expression) -> Any:
        if isinstance(node, exp.Placeholder):
            name, path = str(node.name or node.this), tuple[str, ...]()
        else:
            assert isinstance(node, exp.Column)
            ref = resolve_column(node, self.scope, self.ctx)
            if not isinstance(ref, ParamRef):
                raise self.ctx.error(node, "expected a parameter")
            name, path = ref.name, ref.path
        if self.ctx.template:
            raise TemplateParam(name)
        if name not in self.ctx.params:
            raise self.ctx.error(
                node,
                f"parameter {name!r} is not bound",
                hint=f"bind it with --param {name}=VALUE or the REGISTER entry's params",
            )
        self.ctx.used_params.add(name)
        return _walk_path(self.ctx.params[name], path)

    def _v_Literal(self, node: exp.Literal) -> RowFn:
        value = _literal(node, self.ctx)
        return lambda row: value

    def _v_Null(self, node: exp.Null) -> RowFn:
        return lambda row: None

    def _v_Boolean(self, node: exp.Boolean) -> RowFn:
        value = 1 if node.this else 0
        return lambda row: value

    def _v_Placeholder(self, node: exp.Placeholder) -> RowFn:
        value = self._param(node)
        return lambda row: value

    def _v_Column(self, node: exp.Column) -> RowFn:
        ref = resolve_column(node, self.scope, self.ctx)
        if isinstance(ref, ParamRef):
            value = self._param(node)
            return lambda row: value
        if ref.depth != self.base_depth:
            raise self.ctx.unsupported(
                node,
                "a reference to an outer query here",
                hint="correlate a subquery with equality conditions (inner = outer) in its WHERE",
            )
        return _path_getter(ref.position, ref.path)

    def _v_Dot(self, node: exp.Dot) -> RowFn:
        raise self.ctx.unsupported(node, "this field access form")

    def _v_Paren(self, node: exp.Paren) -> RowFn:
        return self.value(node.this)

    def _v_Neg(self, node: exp.Neg) -> RowFn:
        inner = self.value(node.this)
        neg = V.neg
        return lambda row: neg(inner(row))

    def _binary(self, node: exp.Expression, op: Callable[[Any, Any], Any]) -> RowFn:
        left = self.value(node.this)
        ok, right_const = self.constant(node.expression)
        if ok:
            return lambda row: op(left(row), right_const)
        right = self.value(node.expression)
        return lambda row: op(left(row), right(row))

    def _v_Add(self, node: exp.Add) -> RowFn:
        return self._binary(node, V.add)

    def _v_Sub(self, node: exp.Sub) -> RowFn:
        return self._binary(node, V.sub)

    def _v_Mul(self, node: exp.Mul) -> RowFn:
        return self._binary(node, V.mul)

    def _v_Div(self, node: exp.Div) -> RowFn:
        return self._binary(node, V.div)

    def _v_Mod(self, node: exp.Mod) -> RowFn:
        return self._binary(node, V.mod)

    def _v_DPipe(self, node: exp.DPipe) -> RowFn:
        return self._binary(node, V.concat)

    def _v_EQ(self, node: exp.EQ) -> RowFn:
        return _as_int(self._raw(node))

    def _v_NEQ(self, node: exp.NEQ) -> RowFn:
        return _as_int(self._raw(node))

    def _v_LT(self, node: exp.LT) -> RowFn:
        return _as_int(self._raw(node))

    def _v_LTE(self, node: exp.LTE) -> RowFn:
        return _as_int(self._raw(node))

    def _v_GT(self, node: exp.GT) -> RowFn:
        return _as_int(self._raw(node))

    def _v_GTE(self, node: exp.GTE) -> RowFn:
        return _as_int(self._raw(node))

    def _truth_as_value(self, node: exp.Expression) -> RowFn:
        is_true = self.truth(node, True)
        is_false = self.truth(node, False)

        def value(row: Row) -> Any:
            if is_true(row):
                return 1
            if is_false(row):
                return 0
            return None

        return value

    def _v_And(self, node: exp.And) -> RowFn:
        return self._truth_as_value(node)

    def _v_Or(self, node: exp.Or) -> RowFn:
        return self._truth_as_value(node)

    def _v_Not(self, node: exp.Not) -> RowFn:
        return self._truth_as_value(node)

    def _v_Is(self, node: exp.Is) -> RowFn:
        return self._truth_as_value(node)

    def _v_Like(self, node: exp.Like) -> RowFn:
        return _as_int(self._raw(node))

    def _v_ILike(self, node: exp.ILike) -> RowFn:
        return _as_int(self._raw(node))

    def _raw(self, node: exp.Expression) -> RowFn:
        """Predicates whose value functions return True/False/None."""
        if isinstance(node, exp.Like):
            return self._like(node, case_sensitive=True, escape=None)
        if isinstance(node, exp.ILike):
            return self._like(node, case_sensitive=False, escape=None)
        if isinstance(node, exp.Escape):
            return self._escape(node)
        if isinstance(node, exp.Between):
            return self._between(node)
        if isinstance(node, exp.In) and node.args.get("query") is None:
            return self._in_list(node)
        return self._binary(node, _COMPARISONS[type(node)])

    def _v_Escape(self, node: exp.Escape) -> RowFn:
        return _as_int(self._raw(node))

    def _escape(self, node: exp.Escape) -> RowFn:
        inner = node.this
        ok, escape = self.constant(node.expression)
        if not ok or not isinstance(escape, str) or len(escape) != 1:
            raise self.ctx.error(node, "ESCAPE needs a single-character string")
        if isinstance(inner, exp.Like):
            return self._like(inner, case_sensitive=True, escape=escape)
        if isinstance(inner, exp.ILike):
            return self._like(inner, case_sensitive=False, escape=escape)
        raise self.ctx.unsupported(node, "ESCAPE outside LIKE")

    def _like(self, node: exp.Expression, *, case_sensitive: bool, escape: str | None) -> RowFn:
        subject = self.value(node.this)
        ok, pattern = self.constant(node.expression)
        if ok:
            if pattern is None:
                return lambda row: None
            matcher = V.compile_like(
                V.to_text(pattern), case_sensitive=case_sensitive, escape=escape
            )
            return lambda row: matcher(subject(row))
        pattern_fn = self.value(node.expression)
        like = V.like

        def dynamic(row: Row) -> Any:
            return like(subject(row), pattern_fn(row), case_sensitive=case_sensitive, escape=escape)

        return dynamic

    def _v_In(self, node: exp.In) -> RowFn:
        if node.args.get("query") is not None:
            return self._atom(node)
        return _as_int(self._in_list(node))

    def _in_list(self, node: exp.In) -> RowFn:
        if node.args.get("unnest") or node.args.get("field"):
            raise self.ctx.unsupported(node, "this form of IN")
        subject = self.value(node.this)
        items = node.expressions
        consts = [self.constant(item) for item in items]
        if all(ok for ok, _ in consts):
            values = [value for _, value in consts]
            in_list = V.in_list
            return lambda row: in_list(subject(row), values)
        fns = [self.value(item) for item in items]
        in_list_ = V.in_list
        return lambda row: in_list_(subject(row), [fn(row) for fn in fns])

    def _v_Exists(self, node: exp.Exists) -> RowFn:
        return self._atom(node)

    scalar_hook: AtomHook | None = None
    """Set by the planner where a scalar subquery may appear: it plans the subquery as a
    stage of the level and returns the reader of the value that stage appends to rows."""

    def _v_Subquery(self, node: exp.Subquery) -> RowFn:
        if self.scalar_hook is None or self.base_depth != 0:
            raise self.ctx.unsupported(node, "a scalar subquery here")
        return self.scalar_hook(node, self.scope)

    def _atom(self, node: exp.Expression) -> RowFn:
        if self.atom_hook is None:
            raise self.ctx.unsupported(
                node, f"{node.key.upper()} with a subquery here (only in WHERE)"
            )
        return self.atom_hook(node, self.scope)

    def _v_Between(self, node: exp.Between) -> RowFn:
        return _as_int(self._between(node))

    def _between(self, node: exp.Between) -> RowFn:
        subject = self.value(node.this)
        low = self.value(node.args["low"])
        high = self.value(node.args["high"])
        between = V.between
        return lambda row: between(subject(row), low(row), high(row))

    def _v_Case(self, node: exp.Case) -> RowFn:
        operand = self.value(node.this) if node.this is not None else None
        branches: list[tuple[Callable[[Row], bool] | RowFn, RowFn]] = []
        for branch in node.args.get("ifs") or []:
            result = self.value(branch.args["true"])
            if operand is None:
                branches.append((self.truth(branch.this, True), result))
            else:
                branches.append((self.value(branch.this), result))
        default = self.value(node.args["default"]) if node.args.get("default") else None
        eq = V.eq

        if operand is None:

            def searched(row: Row) -> Any:
                for condition, result in branches:
                    if condition(row):
                        return result(row)
                return default(row) if default is not None else None

            return searched

        def simple(row: Row) -> Any:
            subject = operand(row)
            for candidate, result in branches:
                if eq(subject, candidate(row)) == 1:
                    return result(row)
            return default(row) if default is not None else None

        return simple

    def _v_If(self, node: exp.If) -> RowFn:
        condition = self.truth(node.this, True)
        true = self.value(node.args["true"])
        false = self.value(node.args["false"]) if node.args.get("false") else None
        return lambda row: true(row) if condition(row) else (false(row) if false else None)

    def _v_Coalesce(self, node: exp.Coalesce) -> RowFn:
        fns = [self.value(node.this)] + [self.value(e) for e in node.expressions]

        def coalesce(row: Row) -> Any:
            for fn in fns:
                value = fn(row)
                if value is not None:
                    return value
            return None

        return coalesce

    def _v_Nullif(self, node: exp.Nullif) -> RowFn:
        left, right = self.value(node.this), self.value(node.expression)
        nullif = V.nullif
        return lambda row: nullif(left(row), right(row))

    def _v_Cast(self, node: exp.Cast) -> RowFn:
        to = node.args.get("to")
        kind = to.this if isinstance(to, exp.DataType) else None
        if kind == exp.DataType.Type.DECIMAL:
            name = "NUMERIC"  # sqlglot reads SQLite's NUMERIC as DECIMAL
        elif kind == exp.DataType.Type.USERDEFINED and isinstance(to, exp.DataType):
            name = str(to.args.get("kind") or to.sql())
        elif kind == exp.DataType.Type.DOUBLE or kind == exp.DataType.Type.FLOAT:
            name = "REAL"
        else:
            name = to.sql(dialect="sqlite") if isinstance(to, exp.Expression) else ""
        affinity = V.affinity(name)
        if affinity is None or node.args.get("format") or node.args.get("default"):
            raise self.ctx.unsupported(node, f"CAST to {to.sql() if to else '?'}")
        inner = self.value(node.this)
        cast = V.CASTS[affinity]
        return lambda row: cast(inner(row))

    def _unary(self, node: exp.Expression, fn: Callable[[Any], Any]) -> RowFn:
        if node.expressions:
            raise self.ctx.error(node, f"{node.key.upper()} takes one argument")
        inner = self.value(node.this)
        return lambda row: fn(inner(row))

    def _v_Lower(self, node: exp.Lower) -> RowFn:
        return self._unary(node, V.lower)

    def _v_Upper(self, node: exp.Upper) -> RowFn:
        return self._unary(node, V.upper)

    def _v_Length(self, node: exp.Length) -> RowFn:
        return self._unary(node, V.length)

    def _v_Abs(self, node: exp.Abs) -> RowFn:
        return self._unary(node, V.abs_)

    def _field_comparison(self, node: exp.Expression, want: bool) -> TruthFn | None:
        """``field <op> constant`` as one closure, the hot filter of most views.

        When the field holds a value of the constant's family (a number against
        a number, text against text) Python's comparison is SQL's, so the value
        is compared directly; any other value (NULL, booleans, mixed types,
        JSON) falls back to the general SQL comparison. The constant is a bound
        value, never source text.
        """
        native = _NATIVE.get(type(node))
        column = node.this
        if native is None or not isinstance(column, exp.Column):
            return None
        ok, const = self.constant(node.expression)
        kind = type(const)
        if not ok or kind not in (int, float, str):
            return None
        ref = resolve_column(column, self.scope, self.ctx)
        if isinstance(ref, ParamRef) or ref.depth != self.base_depth or len(ref.path) != 1:
            return None
        general = _COMPARISONS[type(node)]
        position_, field_name = ref.position, ref.path[0]
        numeric = kind is not str

        def is_true(row: Row) -> bool:
            record = row[position_]
            value = None if record is None else record.get(field_name)
            value_kind = type(value)
            if (value_kind is int or value_kind is float) if numeric else value_kind is str:
                return native(value, const)
            return general(value, const) is True

        def is_false(row: Row) -> bool:
            record = row[position_]
            value = None if record is None else record.get(field_name)
            value_kind = type(value)
            if (value_kind is int or value_kind is float) if numeric else value_kind is str:
                return not native(value, const)
            return general(value, const) is False

        return is_true if want else is_false

    # truth ----------------------------------------------------------------
    def truth(self, node: exp.Expression, want: bool) -> TruthFn:
        """A closure answering whether the expression is TRUE (``want``) or FALSE."""
        if isinstance(node, exp.Paren):
            return self.truth(node.this, want)
        if isinstance(node, exp.Not):
            return self.truth(node.this, not want)
        if isinstance(node, (exp.And, exp.Or)):
            parts = [self.truth(p, want) for p in _flatten(node, type(node))]
            use_all = isinstance(node, exp.And) == want
            return _all_of(parts) if use_all else _any_of(parts)
        if isinstance(node, exp.Is):
            target = node.expression
            if not isinstance(target, exp.Null):
                raise self.ctx.unsupported(node, "IS with something other than NULL")
            subject = self.value(node.this)
            if want:
                return lambda row: subject(row) is None
            return lambda row: subject(row) is not None
        if isinstance(node, _RAW_PREDICATES) and not (
            isinstance(node, exp.In) and node.args.get("query") is not None
        ):
            fused = self._field_comparison(node, want)
            if fused is not None:
                return fused
            raw = self._raw(node)
            if want:
                return lambda row: raw(row) is True
            return lambda row: raw(row) is False
        value = self.value(node)
        is_true = V.is_true
        if want:

            def truthy(row: Row) -> bool:
                result = value(row)
                return result is not None and is_true(result)

            return truthy

        def falsy(row: Row) -> bool:
            result = value(row)
            return result is not None and not is_true(result)

        return falsy


_NATIVE: dict[type[exp.Expression], Callable[[Any, Any], bool]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
}
"""Python's comparisons, which agree with SQL's for two numbers or two strings."""

_COMPARISONS: dict[type[exp.Expression], Callable[[Any, Any], Any]] = {
    exp.EQ: V.eq,
    exp.NEQ: V.ne,
    exp.LT: V.lt,
    exp.LTE: V.le,
    exp.GT: V.gt,
    exp.GTE: V.ge,
}
_RAW_PREDICATES = (*_COMPARISONS, exp.Like, exp.ILike, exp.Escape, exp.Between, exp.In)


def _as_int(fn: RowFn) -> RowFn:
    """SQL predicates as values are the integers 1 and 0 (or NULL)."""

    def value(row: Row) -> Any:
        result = fn(row)
        return None if result is None else int(result)

    return value


def _flatten(node: exp.Expression, kind: type[exp.Expression]) -> list[exp.Expression]:
    out: list[exp.Expression] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, kind):
            stack.append(current.expression)
            stack.append(current.this)
        else:
            out.append(current)
    return out


def conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    """The top-level AND terms of a condition (parentheses unwrapped)."""
    if node is None:
        return []
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return [c for part in _flatten(node, exp.And) for c in conjuncts(part)]
    return [node]


def _all_of(parts: list[TruthFn]) -> TruthFn:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda row: a(row) and b(row)
    return lambda row: all(p(row) for p in parts)


def _any_of(parts: list[TruthFn]) -> TruthFn:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda row: a(row) or b(row)
    return lambda row: any(p(row) for p in parts)


def _literal(node: exp.Literal, ctx: CompileContext) -> Any:
    if node.is_string:
        return node.this
    text = str(node.this)
    try:
        return int(text)
    except ValueError:
        pass
    try:
        if text.lower().startswith("0x"):
            return int(text, 16)
        return float(text)
    except ValueError:  # sqlglot's tokenizer accepts a few non-numbers, e.g. ``1e3+08``
        raise ctx.error(node, f"malformed number {text!r}") from None
