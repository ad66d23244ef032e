"""Which data a panel reads for its range: raw counters for minutes, rollups for hours and days.

Series panels get three queries, each guarded by the dashboard range (`$__range_s`) so exactly one
returns data:

| range          | bucket | reads                                                   |
|----------------|--------|---------------------------------------------------------|
| up to 6 hours  | 1 min  | the raw counters, `increase(...[1m])` (live to the last scrape) |
| up to 8 days   | 1 hour | the 15-minute rollups, `sum_over_time(...[1h])`         |
| longer         | 1 day  | the 15-minute rollups, `sum_over_time(...[1d])`         |

Each query sets its own minimum step (1m, 1h, 1d), so a bucket is exactly one point. The guarded-off
queries still run, but over a window of one bucket per step, so they cost next to nothing.

Live totals (`live_total`) read the raw counters over the panel's own fixed range (last hour,
today), so they move with the next scrape after a call; counters born inside the range count whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_meter.dashboards.common import Ctx, target
from genai_meter.dashboards.panels import PromTarget

MINUTE_MAX_RANGE_S = 6 * 3600  # ranges up to this get 1-minute buckets from the raw counters
HOUR_MAX_RANGE_S = 8 * 86400  # then 1-hour buckets up to this, 1-day buckets beyond


@dataclass(frozen=True)
class Tier:
    """One bucket size: the query's minimum step and the range it serves."""

    ref: str
    step: str
    guard: str


TIERS = (
    Tier("A", "1m", f"vector($__range_s) <= {MINUTE_MAX_RANGE_S}"),
    Tier("B", "1h", f"vector($__range_s) > {MINUTE_MAX_RANGE_S} and on () vector($__range_s) <= {HOUR_MAX_RANGE_S}"),
    Tier("C", "1d", f"vector($__range_s) > {HOUR_MAX_RANGE_S}"),
)


def _guarded(expr: str, guard: str) -> str:
    return f"(\n{expr}\n)\nand on () ({guard})"


def bucketed(ctx: Ctx, raw: str, rule: str, *extra: str, by: str = "", legend: str = "",
             money: bool = False) -> list[PromTarget]:
    """Per-bucket totals of a usage counter (`raw`) and its 15-minute rule, by `by`, in three tiers."""
    grouping = f" by ({by})" if by else ""
    exprs = [
        f"sum{grouping} (increase({raw}{ctx.raw(*extra)}[1m]))",
        f"sum{grouping} (sum_over_time({rule}{ctx.attribution(*extra)}[1h]))",
        f"sum{grouping} (sum_over_time({rule}{ctx.attribution(*extra)}[1d]))",
    ]
    out = []
    for tier, expr in zip(TIERS, exprs, strict=True):
        guarded = _guarded(ctx.money(expr) if money else expr, tier.guard)
        out.append(target(guarded, tier.ref, legend, interval=tier.step))
    return out


def live_total(ctx: Ctx, raw: str, *extra: str) -> str:
    """The increase of a raw counter over the panel's range, counting series born in it whole.

    `increase` misses the first value of a series that appears inside the range (no earlier
    sample); those series count with their current value instead.
    """
    x = f"{raw}{ctx.raw(*extra)}"
    return (f"(sum(increase({x}[$__range]) and {x} offset $__range) or vector(0))\n"
            f"+\n(sum({x} unless {x} offset $__range) or vector(0))")
