"""From a parsed SELECT to a plan: a tree of query levels.

A *level* is one SELECT: its sources (FROM and JOINs), its WHERE split into a
static filter and the conjuncts that read subqueries (``IN``/``EXISTS``, each
planned as a child level of its own), its grouping by correlation key, its
order and window (``ORDER BY``/``LIMIT``/``OFFSET``), and its select items,
where a nested select-list subquery is another child level.

A correlated subquery's WHERE is split into *correlation pairs*
(``inner_expr = outer_expr``) and local conditions: the child level keeps its
rows grouped by the inner side, and a parent row reads the group its outer
side names. That is what makes a child change touch only its parents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from sqlglot import exp

from ..errors import SqlError, UnsupportedSqlError
from .compile import (
    ColumnRef,
    CompileContext,
    ExpressionCompiler,
    RowFn,
    Scope,
    TemplateParam,
    TruthFn,
    conjuncts,
    mentions_param,
    referenced_depths,
    resolve_column,
)
from .keys import canonical_json, hash_key
from .parse import deep_recursion, parse_select

CONSTANT_TABLE = ""
"""The pseudo-table of a SELECT without FROM: it never changes, and a level reading it
gets its one row (an empty record, no id, so no member) when the level is built."""

STAR = "star"
STAR_OF = "star_of"
EXPR = "expr"
NESTED = "nested"


@dataclass
class SelectItem:
    """One output column (or ``*`` / ``alias.*``) of a level."""

    kind: str
    name: str | None = None
    fn: RowFn | None = None
    position: int | None = None
    child: LevelPlan | None = None
    single: bool = False
    sql: str = ""


@dataclass
class JoinStep:
    """Equi-join of the rows so far with one more source."""

    table: str
    alias: str
    left_keys: list[RowFn]
    right_keys: list[RowFn]
    sql: str
    left_outer: bool = False
    residual: TruthFn | None = None
    right_field: str | None = None
    """The right key when it is one plain top-level field of the new source: the step
    then reads the circuit's shared index of that table by that field."""
    left_field: str | None = None
    """The left key when it is one plain top-level field of the level's first source
    (``m.author`` in ``JOIN user u ON u.id = m.author``): what routes the new source's
    changes through the first source's field index (see ``ViewPlan.join_route``)."""
    prefilter: TruthFn | None = None
    """WHERE conjuncts on the new source alone (an inner join's private index keeps only
    the records that pass them; WHERE still judges the rows)."""


@dataclass
class AtomState:
    """The current contents of a WHERE subquery, per correlation key.

    ``groups[ck]`` is ``[counts, nulls, total]``: how often each (hashable)
    value appears among the visible rows, how many are NULL, and how many rows
    there are. An ``IN`` probe reads ``counts``; ``EXISTS`` reads ``total``.
    """

    groups: dict[Any, list[Any]] = field(default_factory=dict)


@dataclass
class SubqueryAtom:
    """A subquery predicate in WHERE (``x IN (SELECT ...)`` or ``EXISTS``)."""

    kind: str  # "in" | "exists"
    level: LevelPlan
    probe: RowFn | None
    outer_keys: list[RowFn]
    state: AtomState
    sql: str


@dataclass
class ScalarAtom:
    """A scalar subquery in an expression of a level: a stage after the level's joins
    appends its value to every row (position ``position`` of the row tuple).

    The subquery's rows are grouped by its equality correlation (``level.inner_keys``
    against ``outer_keys``); ``residual`` holds its other conditions on the outer row
    (``x.b < t1.b``), judged on ``(*inner row sources, *outer row)``; ``aggregate``
    computes the value over the matching rows (or ``value_fn`` reads the one row).
    ``bounds`` are the residual's ``inner OP outer`` comparisons, which let a change of
    the subquery re-evaluate only the outer rows whose range holds the changed value.
    """

    level: LevelPlan
    outer_keys: list[RowFn]
    residual: TruthFn | None
    aggregate: AggregatePlan | None
    value_fn: RowFn | None
    position: int
    width: int
    sql: str
    residual_sql: list[str] = field(default_factory=list)
    bounds: list[tuple[RowFn, str, RowFn]] = field(default_factory=list)


@dataclass
class OrderItem:
    fn: RowFn
    desc: bool
    nulls_first: bool
    sql: str


@dataclass
class AggregateSpec:
    """One aggregate call: ``count`` (``arg`` None for ``COUNT(*)``), ``sum``,
    ``avg``, ``min``, ``max``; ``distinct`` only with ``count``."""

    kind: str
    arg: RowFn | None
    distinct: bool
    sql: str


@dataclass
class AggregatePlan:
    """GROUP BY / aggregates / DISTINCT over a level's rows.

    The output of a group is a tuple ``(group values..., aggregate values...)``;
    ``items``, ``having`` and ``order`` are compiled over that tuple.
    ``grouped`` is False for aggregates without GROUP BY (always one row).
    """

    group_fns: list[RowFn]
    aggregates: list[AggregateSpec]
    items: list[tuple[str, RowFn]]
    having: TruthFn | None
    order: list[OrderItem]
    limit: int | None
    offset: int
    grouped: bool
    distinct: bool
    sql: list[str]
    core: str = ""
    """The rows, groups and aggregates computed, without HAVING, ORDER BY, LIMIT and
    the select list: aggregate views with the same core share its state."""

    @property
    def windowed(self) -> bool:
        return self.limit is not None or self.offset > 0


@dataclass
class LevelPlan:
    """One SELECT level; see the module docstring."""

    sources: list[tuple[str, str]]
    joins: list[JoinStep] = field(default_factory=list)
    static_filter: TruthFn | None = None
    static_sql: list[str] = field(default_factory=list)
    dynamic_filter: TruthFn | None = None
    dynamic_sql: list[str] = field(default_factory=list)
    atoms: list[SubqueryAtom] = field(default_factory=list)
    inner_keys: list[RowFn] = field(default_factory=list)
    outer_keys: list[RowFn] = field(default_factory=list)
    correlation_sql: list[str] = field(default_factory=list)
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    items: list[SelectItem] = field(default_factory=list)
    value_fn: RowFn | None = None
    aggregate: AggregatePlan | None = None
    # a nested level grouped by one plain field: groups built on demand from a field index
    lazy_field: str | None = None
    # a top level whose WHERE pins a plain field to a constant: (field, value key)
    seed: tuple[str, Any] | None = None
    # WHERE conjuncts on the first source alone, applied before the joins
    first_filter: TruthFn | None = None
    # scalar subqueries in this level's expressions, one row stage each (in order)
    scalars: list[ScalarAtom] = field(default_factory=list)
    # a set operation (UNION / INTERSECT / EXCEPT) of member levels: circuit.sql.setops
    setop: Any = None
    # a scalar subquery level: its conditions on the outer row that are not equalities
    outer_residual: list[tuple[exp.Expression, TruthFn]] = field(default_factory=list)

    @property
    def has_left_join(self) -> bool:
        return any(step.left_outer for step in self.joins)

    @property
    def tables(self) -> set[str]:
        """Every table this level and its children read."""
        out = {table for table, _ in self.sources}
        for atom in self.atoms:
            out |= atom.level.tables
        for scalar in self.scalars:
            out |= scalar.level.tables
        if self.setop is not None:
            out |= self.setop.tables
        for item in self.items:
            if item.child is not None:
                out |= item.child.tables
        return out

    @property
    def windowed(self) -> bool:
        return self.limit is not None or self.offset > 0

    def nested(self) -> list[SelectItem]:
        return [item for item in self.items if item.kind == NESTED]

    def describe(self, indent: int = 0, title: str = "view") -> list[str]:
        """The level as indented lines of operators (for ``ssp explain``)."""
        pad = "  " * indent
        lines = [f"{pad}{title}"]
        inner = pad + "  "
        if self.setop is not None:
            described: list[str] = self.setop.describe(indent + 1)
            return lines + described
        if self.aggregate is not None:
            lines.extend(f"{inner}{line}" for line in self.aggregate.sql)
        if self.items:
            shown = ", ".join(item.sql for item in self.items)
            lines.append(f"{inner}project [{shown}]")
        if self.windowed:
            lines.append(
                f"{inner}top-k limit={self.limit if self.limit is not None else 'all'}"
                f" offset={self.offset} by [{', '.join(o.sql for o in self.order) or 'row key'}]"
            )
        elif self.order:
            lines.append(f"{inner}order by [{', '.join(o.sql for o in self.order)}] (on read)")
        if self.correlation_sql:
            lazily = (
                f" (groups built on demand from the index on {self.lazy_field})"
                if self.lazy_field is not None
                else ""
            )
            lines.append(f"{inner}group by correlation [{', '.join(self.correlation_sql)}]{lazily}")
        if self.dynamic_sql:
            lines.append(f"{inner}semi-join filter [{' AND '.join(self.dynamic_sql)}]")
        if self.static_sql:
            lines.append(f"{inner}filter [{' AND '.join(self.static_sql)}]")
        for step in reversed(self.joins):
            kind = "left join" if step.left_outer else "join"
            lines.append(f"{inner}{kind} {step.table} AS {step.alias} ON {step.sql} (hash index)")
        table, alias = self.sources[0]
        if table == CONSTANT_TABLE:
            lines.append(f"{inner}one constant row (no FROM)")
        else:
            lines.append(f"{inner}scan {table}" + (f" AS {alias}" if alias != table else ""))
        for atom in self.atoms:
            lines.extend(atom.level.describe(indent + 2, f"{atom.kind} subquery: {atom.sql}"))
        for scalar in self.scalars:
            lines.extend(scalar_describe(scalar, indent + 2))
        for item in self.nested():
            assert item.child is not None
            kind = "one row" if item.single else "array"
            lines.extend(item.child.describe(indent + 2, f"nested {item.name} ({kind})"))
        return lines


@dataclass
class ViewPlan:
    """A planned view: its top level and the tables it reads."""

    name: str
    sql: str
    top: LevelPlan
    tables: list[str]
    identity: str = ""
    """The query as sqlglot prints it back plus its bound parameters: two views with the
    same identity compute the same members (:meth:`circuit.circuit.Circuit.register_view`
    lets the later one share the earlier one's state)."""
    window_family: str | None = None
    """For a top-k view (a LIMIT or OFFSET on its top level or its aggregate, and no
    select-list subquery): the identity without LIMIT and OFFSET. Views of one family
    keep one ordered state and differ only in where their windows cut it."""

    @property
    def route(self) -> tuple[str, str, Any] | None:
        """``(table, field, value key)`` when only changes with that value can matter.

        The view's WHERE pins a field of its FROM source to a constant, and
        that table is read nowhere else in the view, so a change whose old and
        new record both lack the value cannot change the view.
        """
        seed = self.top.seed
        if seed is None:
            return None
        table = self.top.sources[0][0]
        if _source_count(self.top, table) != 1:
            return None
        return table, seed[0], seed[1]

    @property
    def join_route(self) -> tuple[str, str, str] | None:
        """``(table, right field, left field)`` when a routed view's first join can be
        routed through its first source (``JOIN user u ON u.id = m.author``).

        A change of that table can only matter to the view when some record of the
        first source with the view's route value has (or, changed in the same call,
        had) the joined key: the circuit follows the first source's field index by
        the left field from the changed record's key to those records, and their
        route values to the views.
        """
        route = self.route
        if route is None or not self.top.joins:
            return None
        step = self.top.joins[0]
        if step.right_field is None or step.left_field is None:
            return None
        if step.table == route[0] or _source_count(self.top, step.table) != 1:
            return None
        return step.table, step.right_field, step.left_field

    def describe(self) -> str:
        lines = self.top.describe(0, f"view {self.name}")
        route = self.route
        if route is not None:
            through = self.join_route
            if through is not None:
                lines.insert(
                    1,
                    f"  routed: changes of {through[0]} only through {route[0]}.{through[2]}"
                    f" of its records whose {route[1]} is {route[2]!r}",
                )
            lines.insert(
                1, f"  routed: only changes of {route[0]} whose {route[1]} is {route[2]!r}"
            )
        return "\n".join(lines)


def plan_view(
    name: str,
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    path: str | None = None,
    dialect: str | None = None,
    bind: bool = True,
) -> ViewPlan:
    """Parse and plan one view; every problem is a :class:`SqlError` naming it.

    With ``bind`` a view of a template planned before binds its parameters
    into that plan (:class:`BindablePlan`) instead of being planned again.

    Views of one template (the same SQL text) are parsed once: the tree and
    its normalised text come from :func:`parsed_template` (the planner never
    changes the tree it reads), so only planning with the parameters remains.
    """
    template = parsed_template(sql, view=name, path=path, dialect=dialect)
    bindable = template.bindable(name, path) if bind and dialect is None else None
    if bindable is not None:
        return bindable.bind(name, sql, params, path)
    select = template.select
    ctx = CompileContext(view=name, path=path, params=dict(params or {}))
    try:
        with deep_recursion():
            if isinstance(select, exp.SetOperation):
                from .setops import plan_set_operation

                top = plan_set_operation(select, lambda s: _Planner(ctx, dialect), ctx)
            else:
                top = _Planner(ctx, dialect).level(select, parent=None, role="view")
    except RecursionError as err:
        raise UnsupportedSqlError(
            "the query nests deeper than the planner supports", view=name, path=path
        ) from err
    tables = sorted(top.tables - {CONSTANT_TABLE})
    identity = canonical_json([template.text, ctx.params])
    family = None
    if top.aggregate.windowed if top.aggregate is not None else top.windowed and not top.nested():
        family = canonical_json([template.unbounded_text(), ctx.params])
    return ViewPlan(name, sql, top, tables, identity, family)


class Template:
    """A view's SQL parsed once: the tree, and its normalised text (sqlglot's printing),
    which is what makes two subscriptions the same template."""

    __slots__ = ("_bindable", "_unbounded", "select", "text")

    def __init__(self, select: exp.Select):
        self.select = select
        self.text = select.sql()
        self._unbounded: str | None = None
        self._bindable: BindablePlan | bool | None = False  # False: not tried yet

    def bindable(self, view: str, path: str | None) -> BindablePlan | None:
        """The template planned once for every parameter value, or None when its
        parameters reach more than its top level's WHERE (each view is then planned
        with its own values)."""
        found = self._bindable
        if found is False:
            found = self._bindable = _plan_bindable(self, view, path)
        assert found is not True
        return found

    def unbounded_text(self) -> str:
        """The normalised text without LIMIT and OFFSET (a top-k view's family)."""
        if self._unbounded is None:
            unbounded = self.select.copy()
            unbounded.set("limit", None)
            unbounded.set("offset", None)
            self._unbounded = unbounded.sql()
        return self._unbounded


TEMPLATE_CACHE_SIZE = 4096
_templates: dict[tuple[str, str | None], Template] = {}


def parsed_template(
    sql: str, *, view: str, path: str | None = None, dialect: str | None = None
) -> Template:
    """The parsed template of a view's SQL text, cached by the raw text and dialect.

    Refused SQL is not cached (each view gets its own error); the cache keeps
    the most recent :data:`TEMPLATE_CACHE_SIZE` texts.
    """
    key = (sql, dialect)
    found = _templates.get(key)
    if found is not None:
        return found
    template = Template(parse_select(sql, view=view, path=path, dialect=dialect))
    if len(_templates) >= TEMPLATE_CACHE_SIZE:
        del _templates[next(iter(_templates))]
    _templates[key] = template
    return template


class BindablePlan:
    """A template planned once, for every subscription: what binding one compiles.

    The planner in template mode (``CompileContext.template``) compiles
    everything that does not read a parameter and keeps, in order, the top
    level's WHERE conjuncts that do (``m.room = $room``, ``ts > $since``) and
    the candidates for its seed. Binding a subscription compiles only those,
    with its values, exactly as planning it alone would have (the same
    compiler on the same nodes, the same order of conjuncts), and copies the
    top level with the result: the rest of the plan is shared, frozen data.
    Templates whose parameters appear anywhere else, or that hold state in
    their plan (WHERE subqueries), are planned per view instead.
    """

    __slots__ = (
        "core_parts",
        "deferred",
        "family",
        "scope",
        "seed_candidates",
        "tables",
        "text",
        "top",
    )

    def __init__(self, template: Template, planner: _Planner, top: LevelPlan):
        assert planner.top_scope is not None
        self.text = template.text
        self.top = top
        self.tables = sorted(top.tables - {CONSTANT_TABLE})
        self.scope = planner.top_scope
        self.deferred = planner.deferred
        self.seed_candidates = planner.seed_candidates
        # an aggregate's core names its parameters (views of other values share nothing)
        self.core_parts: list[Any] | None = (
            None if top.aggregate is None else orjson.loads(top.aggregate.core)[:-1]
        )
        if (
            top.aggregate.windowed
            if top.aggregate is not None
            else top.windowed and not top.nested()
        ):
            self.family: str | None = template.unbounded_text()
        else:
            self.family = None

    def bind(
        self, name: str, sql: str, params: Mapping[str, Any] | None, path: str | None
    ) -> ViewPlan:
        ctx = CompileContext(view=name, path=path, params=dict(params or {}))
        compiler = ExpressionCompiler(self.scope, ctx)
        parts = [
            compiler.truth(part, True) if isinstance(part, exp.Expression) else part
            for part in self.deferred
        ]
        seed = None
        for field_name, other in self.seed_candidates:
            ok, value = compiler.constant(other)
            if ok and value is not None:
                seed = (field_name, hash_key(value))
                break
        top = replace(self.top, static_filter=_all_of(parts), seed=seed)
        if self.core_parts is not None:
            assert top.aggregate is not None
            core = canonical_json([*self.core_parts, ctx.params])
            top.aggregate = replace(top.aggregate, core=core)
        identity = canonical_json([self.text, ctx.params])
        family = None if self.family is None else canonical_json([self.family, ctx.params])
        return ViewPlan(name, sql, top, self.tables, identity, family)


def _plan_bindable(template: Template, view: str, path: str | None) -> BindablePlan | None:
    """Plan a template once for all parameter values (see :class:`BindablePlan`)."""
    if not isinstance(template.select, exp.Select):
        return None  # a set operation: planned per view
    ctx = CompileContext(view=view, path=path, params={}, template=True)
    planner = _Planner(ctx)
    try:
        with deep_recursion():
            top = planner.level(template.select, parent=None, role="view")
    except (TemplateParam, SqlError, RecursionError):
        return None  # planned per view, which reports any error with that view's name
    if any(level.atoms or level.scalars for level in _levels(top)):
        return None  # a WHERE subquery's contents live in its plan: one per view
    return BindablePlan(template, planner, top)


def _levels(level: LevelPlan) -> list[LevelPlan]:
    out = [level]
    for atom in level.atoms:
        out.extend(_levels(atom.level))
    for scalar in level.scalars:
        out.extend(_levels(scalar.level))
    for item in level.items:
        if item.child is not None:
            out.extend(_levels(item.child))
    return out


class _Planner:
    def __init__(self, ctx: CompileContext, dialect: str | None = None):
        self.ctx = ctx
        # template mode (``ctx.template``): what binding a subscription compiles
        self.deferred: list[TruthFn | exp.Expression] = []
        self.seed_candidates: list[tuple[str, exp.Expression]] = []
        self.top_scope: Scope | None = None
        # SPEC 2: a select-list subquery is SurrealQL nesting in the default dialect, a
        # scalar subquery in a standard one
        self.dialect = dialect

    def level(self, select: exp.Select, parent: Scope | None, role: str) -> LevelPlan:
        """Plan one SELECT. ``role`` is ``view``, ``nested``, ``in`` or ``exists``."""
        ctx = self.ctx
        self._reject_unsupported(select, role)
        sources, join_nodes = self._sources(select)
        scope = Scope(
            {alias: i for i, (_, alias) in enumerate(sources)}, [t for t, _ in sources], parent
        )
        order = self._cross_order(select, sources, join_nodes, scope)
        if order is not None:
            sources = [sources[i] for i in order]
            scope = Scope(
                {alias: i for i, (_, alias) in enumerate(sources)}, [t for t, _ in sources], parent
            )
        plan = LevelPlan(sources=sources)
        compiler = ExpressionCompiler(scope, ctx, atom_hook=None)
        compiler.scalar_hook = self._scalar_hook(plan)

        residuals: list[TruthFn] = []
        where = select.args.get("where")
        where_parts = conjuncts(where.this if where is not None else None)
        for index, node in enumerate(join_nodes, start=1):
            if _is_cross(node):
                step = self._cross_join(index, sources, scope, where_parts)
                residual: list[TruthFn] = []
            else:
                step, residual = self._join(node, index, sources, scope, plan)
            plan.joins.append(step)
            residuals.extend(residual)

        # WHERE: correlation pairs, static conjuncts, subquery conjuncts. A template's top
        # level leaves the conjuncts that read parameters to each subscription's binding.
        deferring = ctx.template and role == "view" and parent is None
        static: list[TruthFn] = []
        dynamic: list[exp.Expression] = []
        extra_static = list(plan.static_sql)
        plan.static_sql = []
        for conjunct in conjuncts(where.this if where is not None else None):
            if _has_subquery(conjunct):
                dynamic.append(conjunct)
                continue
            depths = referenced_depths(conjunct, scope, ctx)
            if depths <= {0}:
                if deferring and mentions_param(conjunct):
                    static.append(conjunct)  # type: ignore[arg-type]  # compiled when bound
                else:
                    static.append(compiler.truth(conjunct, True))
                plan.static_sql.append(conjunct.sql())
            elif parent is not None and self._correlation(conjunct, scope, plan):
                continue
            elif role == "scalar" and depths <= {0, 1}:
                plan.outer_residual.append((conjunct, self._outer_truth(conjunct, scope)))
            else:
                raise ctx.unsupported(
                    conjunct,
                    "a condition on an outer query's row that is not an equality with this one",
                    hint="correlate with inner_column = outer_column",
                )
        self._prefilters(plan, where_parts, sources, scope)
        static = residuals + static
        plan.static_sql = extra_static + plan.static_sql
        if deferring:
            self.deferred, self.top_scope = list(static), scope
        elif static:
            plan.static_filter = static[0] if len(static) == 1 else _all(static)
        if dynamic:
            hook = self._atom_hook(plan)
            dyn_compiler = ExpressionCompiler(scope, ctx, atom_hook=hook)
            dyn_compiler.scalar_hook = compiler.scalar_hook
            parts = [dyn_compiler.truth(node, True) for node in dynamic]
            plan.dynamic_filter = parts[0] if len(parts) == 1 else _all(parts)
            plan.dynamic_sql = [node.sql() for node in dynamic]
        self._index_hints(plan, select, scope, role)

        # select list
        if role == "scalar":
            return plan  # the caller plans the value (scalar_atom)
        if _is_aggregate(select):
            if role != "view":
                raise ctx.unsupported(select, "GROUP BY, DISTINCT or aggregates inside a subquery")
            plan.aggregate = _AggregatePlanner(ctx, scope).plan(select)
            return plan
        if role == "nested" or role == "view":
            plan.items = self._items(select, scope, compiler)
        elif role == "in":
            plan.value_fn = self._in_value(select, compiler)

        self._order_window(select, plan, compiler)
        return plan

    def _index_hints(self, plan: LevelPlan, select: exp.Select, scope: Scope, role: str) -> None:
        """Mark levels that can use a field index or routing.

        A nested level grouped by one plain field of its only source becomes
        lazy; a view whose WHERE pins a plain field of its FROM source to a
        constant gets a seed (its initial scan and the routing of changes).
        """
        where = select.args.get("where")
        pairs = []
        for conjunct in conjuncts(where.this if where is not None else None):
            if isinstance(conjunct, exp.EQ):
                for inner, other in (
                    (conjunct.this, conjunct.expression),
                    (conjunct.expression, conjunct.this),
                ):
                    field = self._plain_field(inner, scope)
                    if field is not None:
                        pairs.append((field, other))
        if role == "nested" and len(plan.inner_keys) == 1 and not (plan.joins or plan.atoms):
            for field, other in pairs:
                if referenced_depths(other, scope, self.ctx) == {1}:
                    plan.lazy_field = field
                    return
        if role == "view":
            compiler = ExpressionCompiler(scope, self.ctx)
            for field, other in pairs:
                if _has_subquery(other) or referenced_depths(other, scope, self.ctx):
                    continue
                if self.ctx.template:
                    self.seed_candidates.append((field, other))  # decided when bound
                    continue
                ok, value = compiler.constant(other)
                if ok and value is not None:
                    plan.seed = (field, hash_key(value))
                    return

    def _plain_field(self, node: exp.Expression, scope: Scope) -> str | None:
        """The field name when ``node`` is a plain top-level column of this level's source."""
        if not isinstance(node, exp.Column) or isinstance(node.this, exp.Star):
            return None
        ref = resolve_column(node, scope, self.ctx)
        if (
            isinstance(ref, ColumnRef)
            and ref.depth == 0
            and ref.position == 0
            and len(ref.path) == 1
        ):
            return ref.path[0]
        return None

    # sources and joins -----------------------------------------------------
    def _sources(self, select: exp.Select) -> tuple[list[tuple[str, str]], list[exp.Join]]:
        ctx = self.ctx
        from_ = select.args.get("from_") or select.args.get("from")
        if from_ is None:
            if select.args.get("joins"):
                raise ctx.unsupported(select, "a JOIN without FROM")
            # a constant level: one row of no record (see CONSTANT_TABLE)
            return [(CONSTANT_TABLE, CONSTANT_TABLE)], []
        first = from_.this
        sources = [self._table(first)]
        joins: list[exp.Join] = list(select.args.get("joins") or [])
        for join in joins:
            sources.append(self._table(join.this))
        aliases = [alias for _, alias in sources]
        for index, alias in enumerate(aliases):
            if alias in aliases[:index]:
                raise ctx.error(
                    select,
                    f"two sources are named {alias!r}",
                    hint="give each source of a join its own alias",
                )
        return sources, joins

    def _table(self, node: exp.Expression) -> tuple[str, str]:
        if not isinstance(node, exp.Table) or node.args.get("db") or node.args.get("catalog"):
            raise self.ctx.unsupported(node, "a FROM item that is not a plain table name")
        if node.args.get("joins") or node.args.get("pivots") or node.args.get("laterals"):
            raise self.ctx.unsupported(node, "this FROM clause form")
        if isinstance(node.this, exp.Expression) and not isinstance(node.this, exp.Identifier):
            raise self.ctx.unsupported(node, "a table-valued function in FROM")
        table = node.name
        alias = node.alias or table
        return table, alias

    def _join(
        self,
        node: exp.Join,
        index: int,
        sources: list[tuple[str, str]],
        scope: Scope,
        plan: LevelPlan,
    ) -> tuple[JoinStep, list[TruthFn]]:
        ctx = self.ctx
        side = (node.args.get("side") or "").upper()
        kind = (node.args.get("kind") or "").upper()
        left_outer = side == "LEFT" and kind in ("", "OUTER")
        if not left_outer and (side or kind not in ("", "INNER")):
            what = " ".join(p for p in (side, kind) if p) or "this"
            raise ctx.unsupported(
                node, f"{what} JOIN (only [INNER] JOIN and LEFT [OUTER] JOIN are maintained)"
            )
        if node.args.get("using"):
            raise ctx.unsupported(node, "JOIN ... USING", hint="write the ON condition")
        on = node.args.get("on")
        if on is None:
            raise ctx.unsupported(node, "a JOIN without an ON equality condition")
        table, alias = sources[index]
        left_scope = Scope(
            {a: i for i, (_, a) in enumerate(sources[:index])},
            [t for t, _ in sources[:index]],
            scope.parent,
        )
        right_scope = Scope({alias: 0}, [table], scope.parent)
        left_compiler = ExpressionCompiler(left_scope, ctx)
        right_compiler = ExpressionCompiler(right_scope, ctx)
        full_compiler = ExpressionCompiler(scope, ctx)
        left_keys: list[RowFn] = []
        right_keys: list[RowFn] = []
        left_nodes: list[exp.Expression] = []
        right_nodes: list[exp.Expression] = []
        residual_sql: list[str] = []
        residual: list[TruthFn] = []
        for conjunct in conjuncts(on):
            pair = self._equi_pair(conjunct, scope, index)
            if pair is not None:
                left_node, right_node = pair
                left_keys.append(left_compiler.value(left_node))
                right_keys.append(right_compiler.value(right_node))
                left_nodes.append(left_node)
                right_nodes.append(right_node)
                continue
            if _has_subquery(conjunct):
                raise ctx.unsupported(conjunct, "a subquery in a JOIN condition")
            depths = referenced_depths(conjunct, scope, ctx)
            if not depths <= {0}:
                raise ctx.unsupported(conjunct, "an outer reference in a JOIN condition")
            residual.append(full_compiler.truth(conjunct, True))
            residual_sql.append(conjunct.sql())
        if not left_keys:
            raise ctx.unsupported(
                node,
                "a JOIN without an equality between the new table and the ones before it",
            )
        right_field = (
            self._plain_field(right_nodes[0], right_scope) if len(right_nodes) == 1 else None
        )
        left_field = (
            self._plain_field(left_nodes[0], left_scope)
            if len(left_nodes) == 1 and right_field is not None
            else None
        )
        # ON conditions of a LEFT JOIN decide what matches, not which rows stay
        step = JoinStep(
            table,
            alias,
            left_keys,
            right_keys,
            on.sql(),
            left_outer=left_outer,
            residual=_all_of(residual) if left_outer else None,
            right_field=right_field,
            left_field=left_field,
        )
        if left_outer:
            return step, []
        plan.static_sql.extend(residual_sql)
        return step, residual

    def _cross_order(
        self,
        select: exp.Select,
        sources: list[tuple[str, str]],
        join_nodes: list[exp.Join],
        scope: Scope,
    ) -> list[int] | None:
        """A better order for a level whose joins are all comma/CROSS joins, or None.

        SQLite picks its own join order; a chain in FROM order would build a product
        wherever a source has no WHERE equality with the ones before it (``FROM a, b, c
        WHERE a.x = c.x AND b.y = c.y``). The order starts from the source pinned by the
        most ``column = constant`` terms and then takes, in FROM order, the first source
        with an equality to those taken. A row's key follows the new order, so levels
        whose row keys decide anything visible (ORDER BY, LIMIT) keep FROM order.
        """
        if not join_nodes or not all(_is_cross(j) for j in join_nodes):
            return None
        if select.args.get("order") or select.args.get("limit") or select.args.get("offset"):
            return None
        where = select.args.get("where")
        links: list[set[int]] = []
        pinned = [0] * len(sources)
        for conjunct in conjuncts(where.this if where is not None else None):
            if not isinstance(conjunct, exp.EQ) or _has_subquery(conjunct):
                continue
            sides = [self._positions(side, scope) for side in (conjunct.this, conjunct.expression)]
            if sides[0] is None or sides[1] is None:
                continue
            if sides[0] and sides[1] and len(sides[0] | sides[1]) > 1:
                links.append(sides[0] | sides[1])
            elif len(sides[0] | sides[1]) == 1:
                pinned[next(iter(sides[0] | sides[1]))] += 1
        first = max(range(len(sources)), key=lambda i: (pinned[i], -i))
        order = [first]
        taken = {first}
        while len(order) < len(sources):
            rest = [i for i in range(len(sources)) if i not in taken]
            linked = [i for i in rest if any(i in link and link - {i} <= taken for link in links)]
            pick = linked[0] if linked else rest[0]
            order.append(pick)
            taken.add(pick)
        return None if order == list(range(len(sources))) else order

    def _cross_join(
        self,
        index: int,
        sources: list[tuple[str, str]],
        scope: Scope,
        where_parts: list[exp.Expression],
    ) -> JoinStep:
        """``FROM a, b`` / ``CROSS JOIN``: WHERE equalities between the new source and the
        earlier ones become the step's join keys (a true product when there are none).

        The equalities stay in WHERE too (a static filter), so the keys only pick the
        candidates: the answer is WHERE's, whatever the keys' notion of equality.
        """
        table, alias = sources[index]
        left_scope = Scope(
            {a: i for i, (_, a) in enumerate(sources[:index])},
            [t for t, _ in sources[:index]],
            scope.parent,
        )
        right_scope = Scope({alias: 0}, [table], scope.parent)
        left_compiler = ExpressionCompiler(left_scope, self.ctx)
        right_compiler = ExpressionCompiler(right_scope, self.ctx)
        left_keys: list[RowFn] = []
        right_keys: list[RowFn] = []
        used: list[str] = []
        for conjunct in where_parts:
            pair = self._equi_pair(conjunct, scope, index) or self._pin_pair(conjunct, scope, index)
            if pair is None:
                continue
            left_node, right_node = pair
            left_keys.append(left_compiler.value(left_node))
            right_keys.append(right_compiler.value(right_node))
            used.append(conjunct.sql())
        on_sql = " AND ".join(used) if used else "TRUE (a product)"
        return JoinStep(table, alias, left_keys, right_keys, on_sql)

    def _prefilters(
        self,
        plan: LevelPlan,
        where_parts: list[exp.Expression],
        sources: list[tuple[str, str]],
        scope: Scope,
    ) -> None:
        """Push WHERE conjuncts that read one source only down to that source, for levels
        with joins and no LEFT JOIN: the first source's changes and each private right
        index then hold only passing records, so a product of filtered tables stays small.
        The conjuncts stay in WHERE, which judges every row as before."""
        if not plan.joins or plan.has_left_join:
            return
        by_source: dict[int, list[TruthFn]] = {}
        for conjunct in where_parts:
            if _has_subquery(conjunct):
                continue
            if self.ctx.template and mentions_param(conjunct):
                continue  # a template's binding compiles it (in WHERE, which judges rows)
            positions = self._positions(conjunct, scope)
            if positions is None or len(positions) != 1:
                continue
            if referenced_depths(conjunct, scope, self.ctx) - {0}:
                continue
            index = next(iter(positions))
            if index > 0 and plan.joins[index - 1].right_field is not None:
                continue  # that step reads the shared index: nothing to keep smaller
            table, alias = sources[index]
            own = ExpressionCompiler(Scope({alias: 0}, [table], scope.parent), self.ctx)
            by_source.setdefault(index, []).append(own.truth(conjunct, True))
        for index, parts in by_source.items():
            predicate = _all_of(parts)
            if index == 0:
                plan.first_filter = predicate
            else:
                plan.joins[index - 1].prefilter = predicate

    def _pin_pair(
        self, node: exp.Expression, scope: Scope, index: int
    ) -> tuple[exp.Expression, exp.Expression] | None:
        """For ``b.x = constant`` with ``b`` source ``index``: (constant, b.x), a join key
        that keeps only source ``index``'s records with that value (NULL keeps none)."""
        if not isinstance(node, exp.EQ) or _has_subquery(node):
            return None
        for this, other in ((node.this, node.expression), (node.expression, node.this)):
            if (
                self._positions(this, scope) == {index}
                and not list(other.find_all(exp.Column))
                and not any(isinstance(n, exp.AggFunc) for n in other.walk())
            ):
                return other, this
        return None

    def _equi_pair(
        self, node: exp.Expression, scope: Scope, index: int
    ) -> tuple[exp.Expression, exp.Expression] | None:
        """For ``a = b`` with one side on source ``index`` only and the other on
        earlier sources only, that pair (earlier side first)."""
        if not isinstance(node, exp.EQ):
            return None
        sides = []
        for side in (node.this, node.expression):
            if _has_subquery(side):
                return None
            positions = self._positions(side, scope)
            if positions is None:
                return None
            sides.append(positions)
        left, right = sides
        if left and right and max(left) < index and right == {index}:
            return node.this, node.expression
        if left and right and max(right) < index and left == {index}:
            return node.expression, node.this
        return None

    def _positions(self, node: exp.Expression, scope: Scope) -> set[int] | None:
        found: set[int] = set()
        for column in node.find_all(exp.Column):
            ref = resolve_column(column, scope, self.ctx)
            if hasattr(ref, "depth"):
                if ref.depth != 0:  # type: ignore[union-attr]
                    return None
                found.add(ref.position)  # type: ignore[union-attr]
        return found

    # correlation ---------------------------------------------------------------
    def _correlation(self, node: exp.Expression, scope: Scope, plan: LevelPlan) -> bool:
        """Record ``inner = outer`` as a correlation pair; False if it is not one."""
        if not isinstance(node, exp.EQ):
            return False
        left_depths = referenced_depths(node.this, scope, self.ctx)
        right_depths = referenced_depths(node.expression, scope, self.ctx)
        if left_depths <= {0} and right_depths == {1}:
            inner, outer = node.this, node.expression
        elif right_depths <= {0} and left_depths == {1}:
            inner, outer = node.expression, node.this
        else:
            if (left_depths | right_depths) - {0, 1}:
                raise self.ctx.unsupported(node, "a reference to a query more than one level out")
            return False
        assert scope.parent is not None
        plan.inner_keys.append(ExpressionCompiler(scope, self.ctx).value(inner))
        plan.outer_keys.append(ExpressionCompiler(scope, self.ctx, base_depth=1).value(outer))
        plan.correlation_sql.append(f"{inner.sql()} = {outer.sql()}")
        return True

    def _atom_hook(self, plan: LevelPlan) -> Callable[[exp.Expression, Scope], RowFn]:
        def hook(node: exp.Expression, scope: Scope) -> RowFn:
            return self._atom(node, scope, plan)

        return hook

    def _atom(self, node: exp.Expression, scope: Scope, plan: LevelPlan) -> RowFn:
        ctx = self.ctx
        if isinstance(node, exp.Exists):
            select = node.this
            kind = "exists"
        else:
            query = node.args["query"]
            select = query.this if isinstance(query, exp.Subquery) else query
            kind = "in"
        if not isinstance(select, exp.Select):
            raise ctx.unsupported(node, "a subquery that is not a plain SELECT")
        try:
            child = self.level(select, parent=scope, role=kind)
        except UnsupportedSqlError:
            if kind != "exists":
                raise
            return self._exists_as_count(node, select, scope, plan)
        state = AtomState()
        probe = ExpressionCompiler(scope, ctx).value(node.this) if kind == "in" else None
        atom = SubqueryAtom(kind, child, probe, child.outer_keys, state, node.sql())
        plan.atoms.append(atom)
        groups = state.groups
        outer_keys = child.outer_keys
        key_of = _key_function(outer_keys)
        hkey = hash_key
        if kind == "exists":

            def exists(row: tuple[Any, ...]) -> Any:
                group = groups.get(key_of(row))
                return 1 if group is not None and group[2] > 0 else 0

            return exists
        assert probe is not None
        probe_fn = probe

        def in_subquery(row: tuple[Any, ...]) -> Any:
            group = groups.get(key_of(row))
            if group is None or group[2] == 0:
                return 0
            value = probe_fn(row)
            if value is None:
                return None
            if group[0].get(hkey(value)):
                return 1
            return None if group[1] else 0

        return in_subquery

    # scalar subqueries ---------------------------------------------------------------
    def _scalar_hook(self, plan: LevelPlan) -> Callable[[exp.Expression, Scope], RowFn]:
        def hook(node: exp.Expression, scope: Scope) -> RowFn:
            return self._scalar(node, scope, plan)

        return hook

    def _scalar(self, node: exp.Expression, scope: Scope, plan: LevelPlan) -> RowFn:
        """Plan ``(SELECT ...)`` in an expression of ``plan``'s level as a row stage; the
        returned reader takes the value the stage appends to the row."""
        ctx = self.ctx
        select = node.this
        for planned in plan.scalars:
            if planned.sql == node.sql():  # the same subquery (ORDER BY 1 of it): one stage
                same = planned.position
                return lambda row: row[same]
        if not isinstance(select, exp.Select):
            raise ctx.unsupported(node, "a scalar subquery that is not a plain SELECT")
        if len(select.expressions) != 1:
            raise ctx.error(node, "a scalar subquery must select exactly one column")
        item = select.expressions[0]
        target = item.this if isinstance(item, exp.Alias) else item
        if isinstance(target, exp.Star) or (
            isinstance(target, exp.Column) and isinstance(target.this, exp.Star)
        ):
            raise ctx.error(node, "a scalar subquery must select one value, not *")
        child = self.level(select, parent=scope, role="scalar")
        if child.outer_residual and (child.atoms or child.scalars):
            raise ctx.unsupported(
                node, "a subquery correlated by an inequality that has subqueries itself"
            )
        child_scope = Scope(
            {alias: i for i, (_, alias) in enumerate(child.sources)},
            [t for t, _ in child.sources],
            scope,
        )
        aggregate: AggregatePlan | None = None
        value_fn: RowFn | None = None
        if _is_aggregate(select):
            if select.args.get("group") or select.args.get("distinct"):
                raise ctx.unsupported(node, "GROUP BY or DISTINCT in a scalar subquery")
            named = select.copy()
            named.set("expressions", [exp.alias_(target.copy(), "_value", quoted=True)])
            for arg in ("order", "limit", "offset"):
                if named.args.get(arg):
                    raise ctx.unsupported(
                        node, "ORDER BY, LIMIT or OFFSET in an aggregate subquery"
                    )
            aggregate = _AggregatePlanner(ctx, child_scope).plan(named)
        else:
            compiler = ExpressionCompiler(child_scope, ctx)
            compiler.scalar_hook = self._scalar_hook(child)
            value_fn = compiler.value(target)
            self._order_window(select, child, compiler)
            if child.outer_residual and (child.order or child.windowed):
                raise ctx.unsupported(
                    node, "ORDER BY or LIMIT in a subquery correlated by an inequality"
                )
        width = len(plan.sources)
        position = width + len(plan.scalars)
        atom = ScalarAtom(
            child,
            child.outer_keys,
            _all_of([fn for _, fn in child.outer_residual]),
            aggregate,
            value_fn,
            position,
            len(child.sources),
            node.sql(),
            [n.sql() for n, _ in child.outer_residual],
            self._bounds(child, scope),
        )
        plan.scalars.append(atom)
        return lambda row: row[position]

    def _exists_as_count(
        self, node: exp.Expression, select: exp.Select, scope: Scope, plan: LevelPlan
    ) -> RowFn:
        """``EXISTS (SELECT ... WHERE x.b < t1.b)``: correlated by more than equalities, it
        is a scalar stage counting the matching rows (EXISTS is a count above 0)."""
        counting = select.copy()
        counting.set("expressions", [exp.Count(this=exp.Star())])
        for arg in ("order", "limit", "offset"):
            counting.set(arg, None)
        if counting.args.get("group") or counting.args.get("having"):
            raise self.ctx.unsupported(node, "GROUP BY in an EXISTS correlated by an inequality")
        count = self._scalar(exp.Subquery(this=counting), scope, plan)
        return lambda row: 1 if count(row) else 0

    def _outer_scope(self, scope: Scope) -> Scope:
        """A subquery level's scope seen from a row ``(*its sources, *outer row)``: its own
        aliases first, then its parent's (shifted); unqualified names stay its own."""
        assert scope.parent is not None
        width = len(scope.tables)
        aliases = {alias: width + i for alias, i in scope.parent.aliases.items()}
        aliases.update(scope.aliases)
        return Scope(aliases, scope.tables, scope.parent.parent)

    def _outer_truth(self, node: exp.Expression, scope: Scope) -> TruthFn:
        return ExpressionCompiler(self._outer_scope(scope), self.ctx).truth(node, True)

    def _bounds(self, child: LevelPlan, scope: Scope) -> list[tuple[RowFn, str, RowFn]]:
        """The residual's ``inner OP outer`` comparisons: (inner fn, OP, outer fn), OP
        written as ``inner OP outer`` with inner on the left."""
        out: list[tuple[RowFn, str, RowFn]] = []
        flip = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
        ops: dict[type[exp.Expression], str] = {
            exp.LT: "<",
            exp.LTE: "<=",
            exp.GT: ">",
            exp.GTE: ">=",
        }
        child_scope = Scope(
            {alias: i for i, (_, alias) in enumerate(child.sources)},
            [t for t, _ in child.sources],
            scope,
        )
        for node, _ in child.outer_residual:
            op = ops.get(type(node))
            if op is None:
                continue
            left = referenced_depths(node.this, child_scope, self.ctx)
            right = referenced_depths(node.expression, child_scope, self.ctx)
            if left == {0} and right == {1}:
                inner, outer = node.this, node.expression
            elif left == {1} and right == {0}:
                inner, outer, op = node.expression, node.this, flip[op]
            else:
                continue
            out.append(
                (
                    ExpressionCompiler(child_scope, self.ctx).value(inner),
                    op,
                    ExpressionCompiler(child_scope, self.ctx, base_depth=1).value(outer),
                )
            )
        return out

    # select list -----------------------------------------------------------------
    def _items(
        self, select: exp.Select, scope: Scope, compiler: ExpressionCompiler
    ) -> list[SelectItem]:
        ctx = self.ctx
        items: list[SelectItem] = []
        names: set[str] = set()
        for node in select.expressions:
            alias = node.alias if isinstance(node, exp.Alias) else None
            target = node.this if isinstance(node, exp.Alias) else node
            if isinstance(target, exp.Star):
                if alias:
                    raise ctx.error(node, "* cannot have an alias")
                if len(scope.tables) > 1:
                    raise ctx.error(
                        node,
                        "* over a join gives two fields named 'id'",
                        hint="select alias.* for one table and alias the other columns",
                    )
                items.append(SelectItem(STAR, sql="*"))
                continue
            if isinstance(target, exp.Column) and isinstance(target.this, exp.Star):
                found = scope.depth_of_alias(target.table)
                if found is None or found[0] != 0:
                    raise ctx.error(node, f"unknown table or alias {target.table!r}")
                stars = [i for i in items if i.kind in (STAR, STAR_OF)]
                if stars:
                    raise ctx.error(
                        node,
                        "two * items bring two fields named 'id'",
                        hint="select one alias.* and name the other columns explicitly",
                    )
                items.append(SelectItem(STAR_OF, position=found[1], sql=f"{target.table}.*"))
                continue
            nested = _nested_subquery(target)
            if nested is not None and self.dialect is not None and isinstance(target, exp.Subquery):
                nested = None  # a standard dialect: a scalar subquery (SPEC 2)
            if nested is not None:
                subquery, single = nested
                if not alias:
                    raise ctx.error(node, "a nested subquery needs a name", hint="add AS name")
                child_select = subquery.this
                if not isinstance(child_select, exp.Select):
                    raise ctx.unsupported(node, "a nested subquery that is not a plain SELECT")
                child = self.level(child_select, parent=scope, role="nested")
                if single and child.limit is None:
                    child.limit = 1
                if single and child.limit is not None and child.limit > 1:
                    child.limit = 1
                item = SelectItem(
                    NESTED, alias, child=child, single=single or child.limit == 1, sql=f"({alias})"
                )
                if item.single and child.limit is not None and child.limit != 1:
                    child.limit = 1
                items.append(item)
            else:
                if _has_subquery(target) and compiler.scalar_hook is None:
                    raise ctx.unsupported(
                        target,
                        "a subquery inside a select-list expression",
                        hint="a nested subquery must be a whole select item: (SELECT ...) AS name",
                    )
                name = output_name(node, ctx)
                items.append(
                    SelectItem(
                        EXPR,
                        name,
                        fn=compiler.value(target),
                        sql=f"{target.sql()} AS {name}" if alias else target.sql(),
                    )
                )
            assert items[-1].name is not None
            if items[-1].name in names:
                raise ctx.error(
                    node,
                    f"two select items are named {items[-1].name!r}",
                    hint="give one of them another alias",
                )
            names.add(items[-1].name or "")
        return items

    def _in_value(self, select: exp.Select, compiler: ExpressionCompiler) -> RowFn:
        if len(select.expressions) != 1:
            raise self.ctx.error(select, "an IN subquery must select exactly one column")
        node = select.expressions[0]
        target = node.this if isinstance(node, exp.Alias) else node
        if isinstance(target, exp.Star) or _has_subquery(target):
            raise self.ctx.error(node, "an IN subquery must select one column value")
        return compiler.value(target)

    # order and window ---------------------------------------------------------------
    def _order_window(
        self, select: exp.Select, plan: LevelPlan, compiler: ExpressionCompiler
    ) -> None:
        plan.order = order_items(select, compiler, self.ctx)
        plan.limit, plan.offset = window_bounds(select, compiler, self.ctx)

    # checks -------------------------------------------------------------------------
    def _reject_unsupported(self, select: exp.Select, role: str) -> None:
        ctx = self.ctx
        for key, what in (
            ("with", "WITH"),
            ("qualify", "QUALIFY"),
            ("windows", "WINDOW"),
            ("laterals", "LATERAL"),
            ("into", "SELECT INTO"),
            ("locks", "FOR UPDATE"),
            ("sample", "TABLESAMPLE"),
            ("prewhere", "PREWHERE"),
            ("connect", "CONNECT BY"),
            ("settings", "SETTINGS"),
            ("format", "FORMAT"),
            ("kind", "SELECT AS STRUCT/VALUE"),
            ("cluster", "CLUSTER BY"),
            ("distribute", "DISTRIBUTE BY"),
            ("sort", "SORT BY"),
        ):
            value = select.args.get(key)
            if value:
                node = value if isinstance(value, exp.Expression) else select
                raise ctx.unsupported(node, f"{what} is not supported yet")
        known = {
            "expressions",
            "from",
            "from_",
            "joins",
            "where",
            "order",
            "limit",
            "offset",
            "group",
            "having",
            "distinct",
            "with",
            "qualify",
            "windows",
            "laterals",
            "into",
            "locks",
            "sample",
            "prewhere",
            "connect",
            "settings",
            "format",
            "kind",
            "cluster",
            "distribute",
            "sort",
            "hint",
            "options",
        }
        for key, value in select.args.items():
            if value and key not in known:
                raise ctx.unsupported(select, f"SELECT clause {key!r}")
        if select.args.get("hint"):
            raise ctx.unsupported(select, "optimizer hints")


def output_name(node: exp.Expression, ctx: CompileContext) -> str:
    """A select item's output name: its alias, or a bare column's own name."""
    if isinstance(node, exp.Alias) and node.alias:
        return node.alias
    if isinstance(node, exp.Column) and node.name:
        return node.name
    raise ctx.error(
        node,
        "an expression in the select list needs a name",
        hint=f"add AS name: {node.sql()} AS name",
    )


def order_items(
    select: exp.Select, compiler: ExpressionCompiler, ctx: CompileContext
) -> list[OrderItem]:
    """ORDER BY items; a bare output name means that output column (as in SQLite)."""
    order = select.args.get("order")
    if order is None:
        return []
    outputs: dict[str, exp.Expression] = {}
    for node in select.expressions:
        if isinstance(node, exp.Alias):
            outputs.setdefault(node.alias, node.this)
        elif isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            outputs.setdefault(node.name, node)
    items = []
    for ordered in order.expressions:
        target = ordered.this
        if isinstance(target, exp.Literal) and not target.is_string:
            target = _position_target(ordered, target, select, ctx)
        if isinstance(target, exp.Column) and not target.table and target.name in outputs:
            target = outputs[target.name]
        if _has_subquery(target) and compiler.scalar_hook is None:
            raise ctx.unsupported(ordered, "ORDER BY a subquery")
        items.append(
            OrderItem(
                compiler.value(target),
                bool(ordered.args.get("desc")),
                bool(ordered.args.get("nulls_first")),
                ordered.sql(),
            )
        )
    return items


def _position_target(
    ordered: exp.Expression, literal: exp.Literal, select: exp.Select, ctx: CompileContext
) -> exp.Expression:
    """``ORDER BY 2``: the second select item's expression (SQLite's rule)."""
    text = str(literal.this)
    items = select.expressions
    if not text.isdigit() or not 1 <= int(text) <= len(items):
        raise ctx.error(
            ordered, f"ORDER BY term {text} is not a position in the select list (1..{len(items)})"
        )
    node = items[int(text) - 1]
    target: exp.Expression = node.this if isinstance(node, exp.Alias) else node
    if isinstance(target, exp.Star) or (
        isinstance(target, exp.Column) and isinstance(target.this, exp.Star)
    ):
        raise ctx.unsupported(ordered, "ORDER BY the position of a * item", hint="name the column")
    return target


def window_bounds(
    select: exp.Select, compiler: ExpressionCompiler, ctx: CompileContext
) -> tuple[int | None, int]:
    """(LIMIT, OFFSET): whole numbers from literals or bound parameters."""

    def count(node: exp.Expression, what: str) -> int:
        ok, value = compiler.constant(node)
        if not ok or isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ctx.error(node, f"{what} needs a whole number >= 0")
        return value

    limit = select.args.get("limit")
    offset = select.args.get("offset")
    return (
        None if limit is None else count(limit.expression, "LIMIT"),
        0 if offset is None else count(offset.expression, "OFFSET"),
    )


_AGGREGATES: dict[type[exp.Expression], str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Min: "min",
    exp.Max: "max",
}


def _is_aggregate(select: exp.Select) -> bool:
    return bool(
        select.args.get("group")
        or select.args.get("having")
        or select.args.get("distinct")
        or any(_has_aggregate(node) for node in select.expressions)
    )


class _AggregateCompiler(ExpressionCompiler):
    """Compiles expressions over a group's output tuple.

    A subexpression equal to a GROUP BY expression reads that group value; an
    aggregate call reads its slot. A column outside both is an error (SQLite
    would pick an arbitrary row's value; that is not maintainable).
    """

    def __init__(
        self,
        scope: Scope,
        ctx: CompileContext,
        groups: list[exp.Expression],
        row_compiler: ExpressionCompiler,
    ):
        super().__init__(scope, ctx)
        self.group_sql = {node.sql(): i for i, node in enumerate(groups)}
        self.row_compiler = row_compiler
        self.aggregates: list[AggregateSpec] = []
        self.aggregate_sql: dict[str, int] = {}

    def value(self, node: exp.Expression) -> RowFn:
        text = node.sql()
        index = self.group_sql.get(text)
        if index is not None:
            return lambda out: out[index]
        kind = _AGGREGATES.get(type(node))
        if kind is not None:
            slot = len(self.group_sql) + self._aggregate(node, kind, text)
            return lambda out: out[slot]
        if isinstance(node, exp.AggFunc):
            raise self.ctx.unsupported(node, f"aggregate function {node.key.upper()}")
        if isinstance(node, exp.Column) and not _is_param_column(node):
            same = self._group_column(node)
            if same is not None:
                return lambda out: out[same]
            raise self.ctx.error(
                node,
                f"column {node.sql()} must appear in GROUP BY or inside an aggregate",
            )
        return super().value(node)

    def _group_column(self, node: exp.Column) -> int | None:
        """The GROUP BY slot of a column written otherwise there (``col1`` for
        ``GROUP BY t.col1``): the same column of the same source."""
        ref = resolve_column(node, self.scope, self.ctx)
        for text, index in self.group_sql.items():
            try:
                group = sqlglot_parse_column(text)
            except Exception:
                continue
            if group is not None and resolve_column(group, self.scope, self.ctx) == ref:
                return index
        return None

    def _aggregate(self, node: exp.Expression, kind: str, text: str) -> int:
        if text in self.aggregate_sql:
            return self.aggregate_sql[text]
        arg_node = node.this
        distinct = isinstance(arg_node, exp.Distinct)
        if distinct:
            if len(arg_node.expressions) != 1:
                raise self.ctx.unsupported(node, f"{text} (DISTINCT of one argument only)")
            arg_node = arg_node.expressions[0]
        if getattr(node, "expressions", None):
            raise self.ctx.unsupported(node, f"{kind.upper()} with several arguments")
        if isinstance(arg_node, exp.Star) or arg_node is None:
            if kind != "count":
                raise self.ctx.error(node, f"{kind.upper()}(*) is not valid SQL")
            arg = None
        else:
            if _has_aggregate(arg_node) or _has_subquery(arg_node):
                raise self.ctx.unsupported(node, "an aggregate of an aggregate or subquery")
            arg = self.row_compiler.value(arg_node)
        self.aggregates.append(AggregateSpec(kind, arg, distinct, text))
        self.aggregate_sql[text] = len(self.aggregates) - 1
        return len(self.aggregates) - 1


def sqlglot_parse_column(text: str) -> exp.Column | None:
    """A GROUP BY expression's text read back, when it is a plain column."""
    node: exp.Expression = exp.maybe_parse(text)
    return node if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star) else None


def _distinct_rewrite(
    select: exp.Select, group_nodes: list[exp.Expression], scope: Scope, ctx: CompileContext
) -> exp.Select | None:
    """``SELECT DISTINCT`` with GROUP BY or aggregates as an equivalent query without one
    of the two, or None: without GROUP BY an aggregate query has one row (DISTINCT is
    moot); a select list holding every GROUP BY expression has distinct rows already;
    without any aggregate, DISTINCT over the groups is DISTINCT over the rows."""
    has_aggregate = any(_has_aggregate(n) for n in select.expressions) or bool(
        select.args.get("having")
    )
    order = select.args.get("order")
    if order is not None and any(_has_aggregate(o) for o in order.expressions):
        has_aggregate = True
    copy = select.copy()
    if not group_nodes:
        copy.set("distinct", None)
        return copy
    targets = [n.this if isinstance(n, exp.Alias) else n for n in select.expressions]
    shown = {t.sql() for t in targets}
    refs = set()
    for t in targets:
        if isinstance(t, exp.Column) and not isinstance(t.this, exp.Star):
            refs.add(resolve_column(t, scope, ctx))
    covered = all(
        g.sql() in shown or (isinstance(g, exp.Column) and resolve_column(g, scope, ctx) in refs)
        for g in group_nodes
    )
    if covered:
        copy.set("distinct", None)
        return copy
    if not has_aggregate:
        copy.set("group", None)
        return copy
    return None


def _is_param_column(node: exp.Column) -> bool:
    first = node.parts[0] if node.parts else None
    return (
        isinstance(first, exp.Identifier)
        and not first.args.get("quoted")
        and first.name.startswith("$")
    )


class _AggregatePlanner:
    """Plans GROUP BY, aggregates, HAVING and DISTINCT of a view's top level."""

    def __init__(self, ctx: CompileContext, scope: Scope):
        self.ctx = ctx
        self.scope = scope

    def plan(self, select: exp.Select) -> AggregatePlan:
        ctx, scope = self.ctx, self.scope
        rows = ExpressionCompiler(scope, ctx)
        distinct = bool(select.args.get("distinct"))
        group = select.args.get("group")
        group_nodes: list[exp.Expression] = list(group.expressions) if group else []
        if distinct:
            if select.args["distinct"].args.get("on"):
                raise ctx.unsupported(select, "DISTINCT ON")
            if group_nodes or any(_has_aggregate(n) for n in select.expressions):
                rewritten = _distinct_rewrite(select, group_nodes, scope, ctx)
                if rewritten is None:
                    raise ctx.unsupported(select, "DISTINCT together with GROUP BY or aggregates")
                return self.plan(rewritten)
            group_nodes = []
            for node in select.expressions:
                target = node.this if isinstance(node, exp.Alias) else node
                if isinstance(target, exp.Star) or (
                    isinstance(target, exp.Column) and isinstance(target.this, exp.Star)
                ):
                    raise ctx.unsupported(node, "SELECT DISTINCT *", hint="name the columns")
                group_nodes.append(target)
        for node in group_nodes:
            if _has_subquery(node) or _has_aggregate(node):
                raise ctx.unsupported(node, "a subquery or aggregate in GROUP BY")
            if not distinct and isinstance(node, exp.Literal) and not node.is_string:
                raise ctx.unsupported(node, "GROUP BY a column position")
        # ``GROUP BY a, a`` groups as ``GROUP BY a``: one slot per distinct expression, so
        # that the group tuple and the slots of the aggregates after it line up
        unique: dict[str, exp.Expression] = {}
        for node in group_nodes:
            unique.setdefault(node.sql(), node)
        group_nodes = list(unique.values())
        group_fns = [rows.value(node) for node in group_nodes]
        out = _AggregateCompiler(scope, ctx, group_nodes, rows)
        items: list[tuple[str, RowFn]] = []
        names: set[str] = set()
        for node in select.expressions:
            target = node.this if isinstance(node, exp.Alias) else node
            if isinstance(target, exp.Star) or (
                isinstance(target, exp.Column) and isinstance(target.this, exp.Star)
            ):
                raise ctx.unsupported(node, "* in an aggregate view", hint="name the columns")
            if _nested_subquery(target) is not None or _has_subquery(target):
                raise ctx.unsupported(node, "a subquery in an aggregate view's select list")
            name = output_name(node, ctx)
            if name in names:
                raise ctx.error(node, f"two select items are named {name!r}")
            names.add(name)
            items.append((name, out.value(target)))
        having_node = select.args.get("having")
        having = out.truth(having_node.this, True) if having_node is not None else None
        order = order_items(select, out, ctx)
        limit, offset = window_bounds(select, out, ctx)
        described = [
            ("distinct" if distinct else "aggregate")
            + f" by [{', '.join(n.sql() for n in group_nodes)}]"
            + (f" computing [{', '.join(a.sql for a in out.aggregates)}]" if out.aggregates else "")
        ]
        if having_node is not None:
            described.insert(0, f"having [{having_node.this.sql()}]")
        if limit is not None or offset:
            described.insert(0, f"top-k limit={limit} offset={offset}")
        stripped = select.copy()
        for arg in ("having", "order", "limit", "offset"):
            stripped.set(arg, None)
        stripped.set("expressions", [exp.Star()])
        core = canonical_json(
            [
                stripped.sql(),
                [node.sql() for node in group_nodes],
                [spec.sql for spec in out.aggregates],
                ctx.params,
            ]
        )
        return AggregatePlan(
            group_fns,
            out.aggregates,
            items,
            having,
            order,
            limit,
            offset,
            grouped=bool(group_nodes),
            distinct=distinct,
            sql=described,
            core=core,
        )


def scalar_describe(scalar: ScalarAtom, indent: int) -> list[str]:
    """A scalar subquery stage for ``ssp explain``."""
    how = []
    if scalar.level.correlation_sql:
        how.append("grouped by " + ", ".join(scalar.level.correlation_sql))
    if scalar.residual_sql:
        ordered = " (ordered index)" if scalar.bounds else ""
        how.append("correlated by " + " AND ".join(scalar.residual_sql) + ordered)
    title = f"scalar subquery: {scalar.sql}" + (f" [{'; '.join(how)}]" if how else " [one row]")
    lines = scalar.level.describe(indent, title)
    if scalar.aggregate is not None:
        pad = "  " * (indent + 1)
        lines[1:1] = [f"{pad}{line}" for line in scalar.aggregate.sql]
    return lines


def _source_count(level: LevelPlan, table: str) -> int:
    """How many FROM/JOIN sources of a level and its sublevels read ``table``."""
    count = sum(1 for name, _ in level.sources if name == table)
    count += sum(_source_count(atom.level, table) for atom in level.atoms)
    count += sum(_source_count(item.child, table) for item in level.nested() if item.child)
    return count


def _nested_subquery(node: exp.Expression) -> tuple[exp.Subquery, bool] | None:
    if isinstance(node, exp.Subquery):
        return node, False
    if isinstance(node, exp.Bracket) and isinstance(node.this, exp.Subquery):
        index = node.expressions
        if len(index) == 1 and isinstance(index[0], exp.Literal) and str(index[0].this) == "0":
            return node.this, True
    return None


def _is_cross(node: exp.Join) -> bool:
    """A comma join or ``CROSS JOIN`` (an inner join without ON or USING)."""
    side = (node.args.get("side") or "").upper()
    kind = (node.args.get("kind") or "").upper()
    return (
        not side
        and kind in ("", "CROSS", "INNER")
        and node.args.get("on") is None
        and not node.args.get("using")
    )


def _has_subquery(node: exp.Expression) -> bool:
    return any(isinstance(n, (exp.Select, exp.Subquery, exp.Exists)) for n in node.walk())


def _has_aggregate(node: exp.Expression) -> bool:
    """An aggregate call of this level (not one inside a subquery)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, exp.AggFunc):
            return True
        if current is not node and isinstance(current, (exp.Select, exp.Subquery, exp.Exists)):
            continue
        stack.extend(current.iter_expressions())
    return False


def _all(parts: list[TruthFn]) -> TruthFn:
    return lambda row: all(p(row) for p in parts)


def _all_of(parts: list[TruthFn]) -> TruthFn | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else _all(parts)


def _key_function(fns: list[RowFn]) -> Callable[[tuple[Any, ...]], Any]:
    """A correlation key: the tuple of hashable values, or None when one is NULL."""
    hkey = hash_key
    if not fns:
        return lambda row: ()
    if len(fns) == 1:
        only = fns[0]

        def one(row: tuple[Any, ...]) -> Any:
            value = only(row)
            return None if value is None else (hkey(value),)

        return one

    def many(row: tuple[Any, ...]) -> Any:
        out = []
        for fn in fns:
            value = fn(row)
            if value is None:
                return None
            out.append(hkey(value))
        return tuple(out)

    return many


key_function = _key_function
