"""The Mann-Whitney U test, small and dependency-free, for the noise-aware gate.

``ssp compare`` asks of two sets of repeated measurements (``ssp bench
--repeat N`` runs) whether one tends to be larger than the other, without
assuming the timings are normally distributed (they are not: a shared runner
adds a long tail of slow runs). The U test ranks the pooled samples and asks
how likely rank sums this lopsided are when both sets come from one
distribution. Without ties and for small samples the p-value is exact (the
null distribution of U counted by dynamic programming, as scipy's
``method="exact"``); otherwise the normal approximation with the tie
correction and a continuity correction is used (scipy's ``"asymptotic"``).

The smallest two-sided p-value two sets of n and m runs can reach is
``2 / C(n+m, n)``: 3 runs against 3 can never reach 0.05 (0.1), 4 against 4
can (0.029), 5 against 5 comfortably (0.0079). :func:`min_p_value` says so
before a gate pretends to test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

EXACT_MAX = 50
"""Largest sample size (each side) for the exact distribution; beyond, the normal one."""


@dataclass(frozen=True, slots=True)
class UTest:
    """``u`` is U of the first sample (pairs where it is the larger, ties counting 1/2)."""

    u: float
    p_value: float
    method: str
    """``exact`` or ``normal``."""


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> UTest:
    """Two-sided Mann-Whitney U test of ``x`` against ``y`` (each at least one value)."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    ranks = _ranks([*x, *y])
    r1 = sum(ranks[:n1])
    u1 = r1 - n1 * (n1 + 1) / 2
    tied = len(set(ranks)) < len(ranks)
    if not tied and max(n1, n2) <= EXACT_MAX:
        return UTest(u1, _exact_p(u1, n1, n2), "exact")
    return UTest(u1, _normal_p(u1, n1, n2, ranks), "normal")


def min_p_value(n1: int, n2: int) -> float:
    """The smallest two-sided p-value any samples of these sizes can reach (no ties)."""
    return min(1.0, 2 / math.comb(n1 + n2, n1))


def _ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties given the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mean = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = mean
        i = j + 1
    return ranks


@cache
def _counts(n1: int, n2: int) -> tuple[int, ...]:
    """How many orderings of n1 + n2 distinct values give each U (0..n1*n2)."""
    if n1 == 0 or n2 == 0:
        return (1,)
    # the largest value is in the first sample (it beats all n2 of the second) or not
    with_first = _counts(n1 - 1, n2)
    without = _counts(n1, n2 - 1)
    out = [0] * (n1 * n2 + 1)
    for u, count in enumerate(with_first):
        out[u + n2] += count
    for u, count in enumerate(without):
        out[u] += count
    return tuple(out)


def _exact_p(u: float, n1: int, n2: int) -> float:
    counts = _counts(n1, n2)
    total = sum(counts)
    k = round(u)
    low = sum(counts[: k + 1]) / total
    high = sum(counts[k:]) / total
    return min(1.0, 2 * min(low, high))


def _normal_p(u: float, n1: int, n2: int, ranks: Sequence[float]) -> float:
    n = n1 + n2
    mean = n1 * n2 / 2
    ties: dict[float, int] = {}
    for r in ranks:
        ties[r] = ties.get(r, 0) + 1
    tie_term = sum(t**3 - t for t in ties.values()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12 * ((n + 1) - tie_term)
    if variance <= 0:
        return 1.0  # every value equal: nothing to tell apart
    z = (abs(u - mean) - 0.5) / math.sqrt(variance)
    return min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))
