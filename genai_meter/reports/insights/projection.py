"""Where a period's spend ends and when it crosses a limit: the one projection method.

Budgets (`/api/v1/budgets`), the month card (`/api/v1/forecast`) and the Prometheus rule behind
`LLMBudgetExhaustionForecast` (`budget:<prefix>_budget_usage:ratio_per_second`) share the run rate:

- **Run rate.** The spend of the last `window` (day budgets 1 h, week 6 h, month 1 d:
  `promql.text.RATE_WINDOW`) divided by the time that spend took: from the first call with spend
  in the window (Prometheus: the first sample of the budget's series) to now, at least a minute,
  at most the window. Spend that began a few
  minutes ago is read at its own pace, not diluted over the whole window. The run-rate path is
  `spent + rate x (t - now)`; the period's average rate (spent / time since the period began) is
  the other end of its range.
- **History** (when the filters have whole past days): the daily forecast (`forecast_daily`) of
  the rest of today, pro rata, and of every following day of the period.
- **Blend.** likely = w x run rate + (1 - w) x history, with the history's weight growing with its
  length to at most one half at 14 days (w = 1 - min(days, 14) / 28; no history: w = 1, the
  Prometheus projection). Conservative and aggressive blend the lower and higher run rate with the
  history's 10th and 90th percentiles.
- **Crossing.** The paths are linear between the breakpoints (now, each local midnight, the period
  end), so the instant each reaches the limit is found exactly by interpolation.

Pure functions over numbers; budgets.py reads the ledger. Values are floats in the budget's unit
(USD or tokens): estimates, shown as such; the spend so far stays exact where it is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from genai_meter.periods import NS
from genai_meter.reports.insights.forecast import Band

MIN_RATE_SPAN_S = 60  # a rate is never read over less than a minute
HISTORY_FULL_DAYS = 14  # history reaches its largest weight (one half) at this many days
DAY_NS = 86400 * NS


@dataclass(frozen=True, slots=True)
class RunRate:
    """The current rate: `spend` over the last `span_s` seconds (of a `window_s` window)."""

    spend: float
    span_s: int
    window_s: int

    @property
    def per_second(self) -> float:
        return self.spend / self.span_s if self.span_s else 0.0


@dataclass(frozen=True, slots=True)
class Projection:
    """A period's projected path: `path` holds (instant, cumulative band) from now to the period end."""

    rate: RunRate
    average_per_second: float
    history_days: int
    history_method: str
    history_weight: float
    path: list[tuple[int, Band]]
    crossing: tuple[int | None, int | None, int | None]  # conservative, likely, aggressive (Unix ns)

    @property
    def end(self) -> Band:
        return self.path[-1][1]

    @property
    def method(self) -> str:
        return "run_rate+history" if self.history_weight > 0 else "run_rate"


def rate_span(first_spend_ns: int | None, now_ns: int, window_s: int) -> int:
    """Seconds the window's spend took: from its first call to now, in [1 minute, window]."""
    if first_spend_ns is None:
        return window_s
    return max(MIN_RATE_SPAN_S, min(window_s, (now_ns - first_spend_ns) // NS))


def history_weight(days: int) -> float:
    return min(days, HISTORY_FULL_DAYS) / (2 * HISTORY_FULL_DAYS)


def breakpoints(now_ns: int, end_ns: int, midnights: list[int]) -> list[int]:
    """Now, each local midnight strictly between now and the end, and the end."""
    return [now_ns, *[m for m in midnights if now_ns < m < end_ns], end_ns]


def project(spent: float, now_ns: int, start_ns: int, end_ns: int, rate: RunRate, days: list[Band],
            midnights: list[int], history_method: str, history_days: int, limit: float | None) -> Projection:
    """The projected path from `now_ns` to `end_ns` (see the module docstring).

    `days[i]` is the forecast of the local day starting at `midnights[i]` (the first one is today,
    which started at or before now); `midnights` are local midnights, ascending.
    """
    weight = history_weight(history_days) if days else 0.0
    elapsed_s = max(1, (now_ns - start_ns) // NS)
    average = spent / elapsed_s
    low_rate, high_rate = sorted((rate.per_second, average))
    points = breakpoints(now_ns, end_ns, midnights)
    history = _history_path(points, now_ns, days, midnights)
    path: list[tuple[int, Band]] = []
    for at, hist in zip(points, history):
        seconds = (at - now_ns) / NS
        run = Band(spent + low_rate * seconds, spent + rate.per_second * seconds, spent + high_rate * seconds)
        path.append((at, Band(_mix(weight, run.low, spent + hist.low), _mix(weight, run.likely, spent + hist.likely),
                              _mix(weight, run.high, spent + hist.high))))
    crossing = (None, None, None) if limit is None else (
        _crossing(path, limit, lambda b: b.low), _crossing(path, limit, lambda b: b.likely),
        _crossing(path, limit, lambda b: b.high))
    return Projection(rate, average, history_days if days else 0, history_method, weight, path, crossing)


def _mix(weight: float, run: float, history: float) -> float:
    return (1 - weight) * run + weight * history


def _history_path(points: list[int], now_ns: int, days: list[Band], midnights: list[int]) -> list[Band]:
    """The history forecast summed from now to each point (today pro rata)."""
    out = []
    for at in points:
        low = likely = high = 0.0
        for day_start, band in zip(midnights, days):
            day_end = day_start + DAY_NS
            covered = min(at, day_end) - max(now_ns, day_start)
            if covered <= 0:
                continue
            share = covered / DAY_NS
            low, likely, high = low + band.low * share, likely + band.likely * share, high + band.high * share
        out.append(Band(low, likely, high))
    return out


def _crossing(path: list[tuple[int, Band]], limit: float, pick: Callable[[Band], float]) -> int | None:
    """The first instant the picked line reaches `limit` (None when it stays below within the path)."""
    before_at, before = path[0][0], pick(path[0][1])
    if before >= limit:
        return before_at
    for at, band in path[1:]:
        value = pick(band)
        if value >= limit:
            share = (limit - before) / (value - before) if value > before else 1.0
            return before_at + int((at - before_at) * share)
        before_at, before = at, value
    return None
