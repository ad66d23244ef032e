"""Ranking of grouped sums in Python: the top k groups by a metric and the exact remainder.

The reference of what a backend ranking in its engine returns (`sqlite_grouped.top_sql`): groups
ordered by the metric descending, ties by key ascending; groups of no calls left out; the remainder
is the element-wise sum of every group past the k-th, so that the rows and the remainder add up to
the range's total to the last digit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from genai_meter.ledger.model import Ranked, Totals
from genai_meter.ledger.rows import COST_CLASSES, SUM_NAMES, TOKEN_CLASSES

METRIC_COLUMNS = {"cost": tuple(SUM_NAMES.index(f"c_{c}") for c in COST_CLASSES),
                  "tokens": tuple(SUM_NAMES.index(f"t_{c}") for c in TOKEN_CLASSES),
                  "calls": (SUM_NAMES.index("calls"),)}


def metric_columns(metric: str) -> tuple[int, ...]:
    """The SUM_NAMES positions whose sum is `metric`; ValueError naming it if unknown."""
    found = METRIC_COLUMNS.get(metric)
    if found is None:
        raise ValueError(f"metric must be cost, tokens or calls, got {metric!r}")
    return found


def rank_groups(groups: Mapping[tuple[str, ...], Sequence[int]], limit: int | None, metric: str,
                to_totals: Callable[[tuple[str, ...], Sequence[int]], Totals]) -> Ranked:
    """The top `limit` of `groups` (SUM_NAMES sums per key) and the remainder (every group: None)."""
    columns = metric_columns(metric)
    ordered = sorted(((key, sums) for key, sums in groups.items() if sums[0]),
                     key=lambda kv: (-sum(kv[1][i] for i in columns), kv[0]))
    if limit is None or len(ordered) <= limit:
        return Ranked([to_totals(k, v) for k, v in ordered], None, len(ordered), limit)
    limit = max(limit, 0)
    rest = [0] * len(SUM_NAMES)
    for _, sums in ordered[limit:]:
        for i, v in enumerate(sums):
            rest[i] += v
    return Ranked([to_totals(k, v) for k, v in ordered[:limit]], to_totals((), rest), len(ordered), limit)
