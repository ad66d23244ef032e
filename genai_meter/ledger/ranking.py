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
from genai_meter.ledger.units import UnitSums

METRIC_COLUMNS = {"cost": tuple(SUM_NAMES.index(f"c_{c}") for c in COST_CLASSES),
                  "tokens": tuple(SUM_NAMES.index(f"t_{c}") for c in TOKEN_CLASSES),
                  "calls": (SUM_NAMES.index("calls"),)}


def metric_columns(metric: str) -> tuple[int, ...]:
    """The SUM_NAMES positions whose sum is `metric`; ValueError naming it if unknown."""
    found = METRIC_COLUMNS.get(metric)
    if found is None:
        raise ValueError(f"metric must be cost, tokens or calls, got {metric!r}")
    return found


def rank_groups(groups: Mapping[tuple[str, ...], Sequence[int]], units: Mapping[tuple[str, ...], UnitSums],
                limit: int | None, metric: str,
                to_totals: Callable[[tuple[str, ...], Sequence[int], UnitSums | None], Totals]) -> Ranked:
    """The top `limit` of `groups` (SUM_NAMES sums per key, with the billed `units` of each key: their cost
    counts in the cost metric) and the remainder (every group: None)."""
    columns = metric_columns(metric)

    def value(key: tuple[str, ...], sums: Sequence[int]) -> int:
        extra = units[key].cost_total_pico if metric == "cost" and key in units else 0
        return sum(sums[i] for i in columns) + extra

    ordered = sorted(((key, sums) for key, sums in groups.items() if sums[0]),
                     key=lambda kv: (-value(*kv), kv[0]))
    if limit is None or len(ordered) <= limit:
        return Ranked([to_totals(k, v, units.get(k)) for k, v in ordered], None, len(ordered), limit)
    limit = max(limit, 0)
    rest = [0] * len(SUM_NAMES)
    rest_units = UnitSums()
    for key, sums in ordered[limit:]:
        for i, v in enumerate(sums):
            rest[i] += v
        if key in units:
            rest_units.merge(units[key])
    return Ranked([to_totals(k, v, units.get(k)) for k, v in ordered[:limit]], to_totals((), rest, rest_units),
                  len(ordered), limit)
