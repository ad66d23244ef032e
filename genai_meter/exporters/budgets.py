"""Budget counting: spend and tokens per budget and calendar period (DESIGN, Budgets).

A budget's `match` (label -> value, or `~regex` full match) is tested against the *raw* values of
the call (before any overflow, hashing or cutting; an empty base value reads as `unknown`, as its
label does), so a budgeted customer is never lost to a cap. Every budget counts both spend (USD,
exact Decimal) and tokens, whatever its limit's unit, so dashboards can show either.

Periods are calendar periods of the call's end time in the budget's UTC offset: day
`2026-11-23`, ISO week `2026-W48` (Monday start), month `2026-11`.

Which periods are exported is decided by the wall clock (`now`): the current period always (at
zero before its first call, so `increase()` sees its first increment), the next one if a call with
a slightly-ahead clock already landed there, and the previous one only during a grace time after
the rollover (default 5 minutes), so a scrape right after midnight still sees its final value.
After that the previous period's series stop being exported, and Prometheus marks them stale: the
budget alert `sum by (budget) (increase(x[32d]) and x)` then counts only the current period.
Calls for any other period (late by more than the grace, or far in the future) do not count
against a budget (they still count in the usage metrics); `dropped` counts them.

Not thread-safe: `matching` is pure and may run anywhere; `add` and `visible` run under the
owner's lock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from genai_meter.config import BudgetConfig
from genai_meter.contract import UNKNOWN
from genai_meter.periods import NS, Period, PeriodBounds, period_of
from genai_meter.records import LLMCall

BASE_MATCH_LABELS = ("service_name", "environment", "provider", "model", "operation")


def _matcher(pattern: str) -> Callable[[str], bool]:
    if pattern.startswith("~"):
        regex = re.compile(pattern[1:])
        return lambda value: regex.fullmatch(value) is not None
    return lambda value: value == pattern


class Budget:
    """One configured budget: precompiled matchers and its per-period totals."""

    __slots__ = ("name", "kind", "offset", "unit", "limit", "_matchers", "_periods", "_cache_now",
                 "_cache_call")

    def __init__(self, config: BudgetConfig) -> None:
        self.name = config.name
        self.kind: Period = config.period
        self.offset = config.offset
        self.unit = config.unit
        self.limit = config.limit
        self._matchers: tuple[tuple[str, Callable[[str], bool]], ...] = tuple(
            (label, _matcher(pattern)) for label, pattern in sorted(config.match.items()))
        self._periods: dict[int, list[Any]] = {}  # start_ns -> [label, spend Decimal, tokens]
        self._cache_now = PeriodBounds("", 0, 0)
        self._cache_call = PeriodBounds("", 0, 0)

    def matches(self, raw: dict[str, str]) -> bool:
        return all(test(raw.get(label, "")) for label, test in self._matchers)

    def _now(self, now_ns: int) -> PeriodBounds:
        cached = self._cache_now
        if not cached.start_ns <= now_ns < cached.end_ns:
            cached = self._cache_now = period_of(self.kind, self.offset, now_ns)
        return cached

    def _call(self, ns: int) -> PeriodBounds:
        cached = self._cache_call
        if not cached.start_ns <= ns < cached.end_ns:
            cached = self._cache_call = period_of(self.kind, self.offset, ns)
        return cached

    def add(self, end_ns: int, now_ns: int, grace_ns: int, spend: Decimal, tokens: float) -> bool:
        """Count one call ending at `end_ns`; False if its period is not an exported one."""
        current = self._now(now_ns)
        period = self._call(end_ns)
        if not (period.start_ns == current.start_ns or period.start_ns == current.end_ns
                or (period.end_ns == current.start_ns and now_ns < current.start_ns + grace_ns)):
            return False
        entry = self._periods.get(period.start_ns)
        if entry is None:
            self._prune(now_ns, grace_ns)
            entry = self._periods[period.start_ns] = [period.label, Decimal(0), 0]
        entry[1] += spend
        entry[2] += tokens
        return True

    def _prune(self, now_ns: int, grace_ns: int) -> PeriodBounds:
        current = self._now(now_ns)
        keep_from = current.start_ns
        if now_ns < current.start_ns + grace_ns:
            keep_from = self._call(current.start_ns - 1).start_ns
        for start in [s for s in self._periods if s < keep_from]:
            del self._periods[start]
        return current

    def visible(self, now_ns: int, grace_ns: int) -> list[tuple[str, Decimal, float]]:
        """(period, spend, tokens) of the exported periods, oldest first; drops the others."""
        current = self._prune(now_ns, grace_ns)
        if current.start_ns not in self._periods:
            self._periods[current.start_ns] = [current.label, Decimal(0), 0]
        return [(e[0], e[1], e[2]) for _, e in sorted(self._periods.items())]


class BudgetTracker:
    """All configured budgets of one store."""

    def __init__(self, budgets: Sequence[BudgetConfig], dimensions: Sequence[str], *,
                 grace_s: float = 300.0) -> None:
        self.budgets = tuple(Budget(b) for b in budgets)
        self.dimensions = tuple(dimensions)
        self.grace_ns = int(grace_s * NS)
        self.dropped = 0  # calls that matched a budget but fell outside its exported periods

    def __bool__(self) -> bool:
        return bool(self.budgets)

    def matching(self, call: LLMCall) -> list[Budget]:
        """The budgets whose matchers accept the call's raw values (pure; no lock needed)."""
        raw = {
            "service_name": call.service or UNKNOWN,
            "environment": call.environment or UNKNOWN,
            "provider": call.provider or UNKNOWN,
            "model": call.model or UNKNOWN,
            "operation": call.operation or UNKNOWN,
        }
        dims = call.dimensions
        for name in self.dimensions:
            value = dims.get(name)
            raw[name] = "" if value is None else str(value)
        return [b for b in self.budgets if b.matches(raw)]

    def add(self, budgets: Sequence[Budget], end_ns: int, now_ns: int, spend: Decimal,
            tokens: float) -> None:
        """Count one call against the matched budgets (under the owner's lock)."""
        when = end_ns if end_ns > 0 else now_ns
        for budget in budgets:
            if not budget.add(when, now_ns, self.grace_ns, spend, tokens):
                self.dropped += 1

    def visible(self, now_ns: int) -> Iterator[tuple[Budget, str, Decimal, float]]:
        """(budget, period, spend, tokens) of every exported series (under the owner's lock)."""
        for budget in self.budgets:
            for period, spend, tokens in budget.visible(now_ns, self.grace_ns):
                yield budget, period, spend, tokens
