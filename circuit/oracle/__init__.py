"""Independent oracles: evaluate a view's SQL from scratch over the current tables.

An oracle knows nothing of the circuit: it gets the SQL, the parameters and
the records, and answers with the rows the SPEC says the view must have, or
with :class:`Skipped` when it cannot run a construct. ``ssp verify`` and the
differential tests compare the circuit's rows with an oracle's.
"""

from .base import Oracle, OracleResult, Rows, Skipped, canonical_json, get_oracle
from .compare import RowDiff, diff_rows, normalize_value

__all__ = [
    "Oracle",
    "OracleResult",
    "RowDiff",
    "Rows",
    "Skipped",
    "canonical_json",
    "diff_rows",
    "get_oracle",
    "normalize_value",
]
