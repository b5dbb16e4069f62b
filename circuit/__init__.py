"""ssp's engine: an incremental (DBSP) view-maintenance circuit over JSON records."""

from .circuit import Circuit
from .errors import (
    CircuitError,
    MutationLogError,
    ReplayError,
    SqlError,
    UnsupportedSqlError,
    VerificationError,
)
from .metrics import BatchStats
from .mutations import Mutation
from .updates import BatchResult, ViewUpdate

__all__ = [
    "BatchResult",
    "BatchStats",
    "Circuit",
    "CircuitError",
    "Mutation",
    "MutationLogError",
    "ReplayError",
    "SqlError",
    "UnsupportedSqlError",
    "VerificationError",
    "ViewUpdate",
]
