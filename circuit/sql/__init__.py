"""SQL: parse view definitions (sqlglot), plan them into levels, compile expressions."""

from .parse import ViewDefinition, load_views, parse_views
from .plan import ViewPlan, plan_view

__all__ = ["ViewDefinition", "ViewPlan", "load_views", "parse_views", "plan_view"]
