"""Planning ``UNION [ALL]``, ``INTERSECT`` and ``EXCEPT`` of SELECTs.

A set operation is a tree whose leaves are member SELECTs (each planned as a level of
its own, select list included) and whose inner nodes combine the multisets of their
children's output tuples. Every operator is pointwise in the tuple (DBSP's Z-set sum,
then distinct where SQL says so): with ``m`` the multiplicity of a tuple,

- ``A UNION ALL B``: ``mA + mB``;
- ``A UNION B``: ``1`` if ``mA + mB > 0``;
- ``A INTERSECT B``: ``1`` if ``mA > 0`` and ``mB > 0``;
- ``A EXCEPT B``: ``1`` if ``mA > 0`` and ``mB = 0``.

So a change of one member re-evaluates only the tuples it changed
(:class:`circuit.operators.union.SetOpLevel`). The view's rows are the tuples with their
multiplicity; output names are the first member's; ``ORDER BY`` (an output name or
position), ``LIMIT`` and ``OFFSET`` apply to the whole, as in SQL. The view is planned as
an aggregate view whose groups are the result's tuples (copies of a tuple under UNION
ALL are groups of their own), so it orders, windows and names its members like one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from .compile import CompileContext, ExpressionCompiler, RowFn, Scope
from .keys import canonical_json
from .plan import (
    CONSTANT_TABLE,
    EXPR,
    AggregatePlan,
    LevelPlan,
    OrderItem,
    window_bounds,
)


@dataclass
class SetNode:
    """An inner node (``op`` with two children) or a member leaf (``member`` index)."""

    op: str = ""  # union | union all | intersect | except
    left: SetNode | None = None
    right: SetNode | None = None
    member: int | None = None

    def count(self, counts: list[int]) -> int:
        """The multiplicity of a tuple here, given its multiplicity in each member."""
        if self.member is not None:
            return counts[self.member]
        assert self.left is not None and self.right is not None
        a, b = self.left.count(counts), self.right.count(counts)
        if self.op == "union all":
            return a + b
        if self.op == "union":
            return 1 if a + b > 0 else 0
        if self.op == "intersect":
            return 1 if a > 0 and b > 0 else 0
        return 1 if a > 0 and b == 0 else 0

    def sql(self, members: list[str]) -> str:
        if self.member is not None:
            return members[self.member]
        assert self.left is not None and self.right is not None
        return f"({self.left.sql(members)} {self.op.upper()} {self.right.sql(members)})"


@dataclass
class SetOpPlan:
    """A set operation's members (levels), its tree, and its output's column names."""

    members: list[LevelPlan]
    member_fns: list[list[RowFn]]
    tree: SetNode
    names: list[str]
    member_sql: list[str] = field(default_factory=list)

    @property
    def tables(self) -> set[str]:
        out: set[str] = set()
        for member in self.members:
            out |= member.tables
        return out

    def describe(self, indent: int) -> list[str]:
        pad = "  " * indent
        lines = [f"{pad}set operation {self.tree.sql([f'#{i}' for i in range(len(self.members))])}"]
        for i, member in enumerate(self.members):
            lines.extend(member.describe(indent + 1, f"member #{i}: {self.member_sql[i]}"))
        return lines


PlannerFactory = Callable[[exp.Select], Any]


def plan_set_operation(
    node: exp.SetOperation, planner: PlannerFactory, ctx: CompileContext
) -> LevelPlan:
    """The top level of a set-operation view (see the module docstring)."""
    members: list[exp.Select] = []
    tree = _tree(node, members, ctx, top=True)
    levels: list[LevelPlan] = []
    fns: list[list[RowFn]] = []
    names: list[str] = []
    for index, select in enumerate(members):
        if index > 0:  # SQL names the columns after the first member: the others need none
            select = select.copy()
            select.set(
                "expressions",
                [
                    exp.alias_(e.this if isinstance(e, exp.Alias) else e, f"_{i}", quoted=True)
                    for i, e in enumerate(select.expressions)
                ],
            )
        level = planner(select).level(select, parent=None, role="view")
        if level.aggregate is not None or level.nested():
            raise ctx.unsupported(
                select, "GROUP BY, DISTINCT, aggregates or nesting in a member of a set operation"
            )
        if any(item.kind != EXPR for item in level.items):
            raise ctx.unsupported(
                select, "* in a member of a set operation", hint="name the columns"
            )
        if index == 0:
            names = [item.name or "" for item in level.items]
        elif len(level.items) != len(names):
            raise ctx.error(
                select, "the members of a set operation must select the same number of columns"
            )
        levels.append(level)
        fns.append([item.fn for item in level.items if item.fn is not None])
    setop = SetOpPlan(levels, fns, tree, names, [m.sql() for m in members])
    order = _order(node, names, ctx)
    compiler = ExpressionCompiler(Scope({}, []), ctx)
    limit, offset = window_bounds(node, compiler, ctx)  # type: ignore[arg-type]
    width = len(names)
    aggregate = AggregatePlan(
        group_fns=[_at(i) for i in range(width)],
        aggregates=[],
        items=[(name, _at(i)) for i, name in enumerate(names)],
        having=None,
        order=order,
        limit=limit,
        offset=offset,
        grouped=True,
        distinct=True,
        sql=[],
        core=canonical_json(["set operation", node.sql(), ctx.params]),
    )
    top = LevelPlan(sources=[(CONSTANT_TABLE, CONSTANT_TABLE)], aggregate=aggregate)
    top.setop = setop
    return top


def _at(index: int) -> RowFn:
    return lambda out: out[index]


def _tree(
    node: exp.Expression, members: list[exp.Select], ctx: CompileContext, top: bool
) -> SetNode:
    if isinstance(node, exp.Subquery):
        node = node.this
    if isinstance(node, exp.Select):
        for arg in ("order", "limit", "offset"):
            if node.args.get(arg):
                raise ctx.unsupported(node, "ORDER BY or LIMIT inside a member of a set operation")
        members.append(node)
        return SetNode(member=len(members) - 1)
    if not isinstance(node, exp.SetOperation):
        raise ctx.unsupported(node, f"{node.key.upper()} in a set operation")
    if not top and any(node.args.get(a) for a in ("order", "limit", "offset")):
        raise ctx.unsupported(node, "ORDER BY or LIMIT inside a set operation")
    if node.args.get("by_name") or node.args.get("side") or node.args.get("kind"):
        raise ctx.unsupported(node, "this form of set operation")
    distinct = node.args.get("distinct", True) is not False
    if isinstance(node, exp.Union):
        op = "union" if distinct else "union all"
    elif isinstance(node, exp.Intersect):
        op = "intersect"
    elif isinstance(node, exp.Except):
        op = "except"
    else:
        raise ctx.unsupported(node, f"{node.key.upper()}")
    if op in ("intersect", "except") and not distinct:
        raise ctx.unsupported(node, f"{op.upper()} ALL")
    return SetNode(
        op,
        _tree(node.this, members, ctx, top=False),
        _tree(node.expression, members, ctx, top=False),
    )


def _order(node: exp.SetOperation, names: list[str], ctx: CompileContext) -> list[OrderItem]:
    """ORDER BY of a set operation: output positions or output names."""
    order = node.args.get("order")
    if order is None:
        return []
    items = []
    for ordered in order.expressions:
        target = ordered.this
        if isinstance(target, exp.Literal) and not target.is_string and str(target.this).isdigit():
            index = int(str(target.this)) - 1
            if not 0 <= index < len(names):
                raise ctx.error(
                    ordered,
                    f"ORDER BY term {target.this} is not a position in the select list"
                    f" (1..{len(names)})",
                )
        elif isinstance(target, exp.Column) and not target.table and target.name in names:
            index = names.index(target.name)
        else:
            raise ctx.unsupported(
                ordered, "ORDER BY of a set operation by other than an output name or position"
            )
        items.append(
            OrderItem(
                _at(index),
                bool(ordered.args.get("desc")),
                bool(ordered.args.get("nulls_first")),
                ordered.sql(),
            )
        )
    return items
