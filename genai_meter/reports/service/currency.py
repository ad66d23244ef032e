"""Reports in another currency: a `LedgerReader` whose money is converted from USD by dated rates.

The ledger stays in USD. The rule (docs/reports.md, "Currencies"): every money figure is summed per UTC
day in USD (exact integers of 10^-12 USD), each day's figure is converted at that day's rate
(`pricing.fx.FxTable.rate`: the day's own, else the newest within `max_gap_days` before it), rounded
half-even to 10^-12 of the currency, and the converted days are added exactly. Each cost class, each
billed unit and the list cost convert on their own, so a total is the exact sum of its parts and every
format shows the same integers. Series steps are UTC (a day of rates is a UTC day): steps of a minute or
an hour take their day's rate, longer steps add converted UTC days. `rates` records each rate used.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from genai_meter.config import Config, ConfigError
from genai_meter.ledger.model import Filters, LedgerReader, Metric, Point, Ranked, Step, Totals
from genai_meter.ledger.parts import step_starts
from genai_meter.ledger.units import UnitSums
from genai_meter.pricing.fx import USD, FxTable, load_fx
from genai_meter.reports.render.tables import Report, merge
from genai_meter.reports.service.params import ParamError

DAY_NS = 86400 * 10**9


def utc_day(ns: int) -> date:
    return datetime.fromtimestamp(ns // 10**9, UTC).date()


def convert_pico(pico: int, rate: Decimal) -> int:
    """10^-12 USD at `rate` (units of the currency per USD), in 10^-12 of the currency, half-even."""
    return int((Decimal(pico) * rate).to_integral_value(rounding=ROUND_HALF_EVEN)) if pico else 0


def converted(t: Totals, rate: Decimal) -> Totals:
    """`t` with every money figure converted at `rate` (the other sums as they are)."""
    units = UnitSums(dict(t.units.quantity), {k: convert_pico(v, rate) for k, v in t.units.cost_pico.items()},
                     t.units.partial, dict(t.units.unpriced), dict(t.units.estimates))
    return Totals(key=t.key, calls=t.calls, errors=t.errors, unpriced=t.unpriced, unmetered=t.unmetered,
                  invalid=t.invalid, tokens=dict(t.tokens),
                  cost_pico={k: convert_pico(v, rate) for k, v in t.cost_pico.items()},
                  list_cost_pico=convert_pico(t.list_cost_pico, rate), duration_s_sum=t.duration_s_sum,
                  weighted_calls=t.weighted_calls, units=units)


def empty(key: tuple[str, ...]) -> Totals:
    return Totals(key=key, tokens={}, cost_pico={})


class CurrencyReader:
    """`reader` with money in `currency` (see the module docstring); every other query passes through.
    `rates` holds each day's rate used (ISO day -> decimal text); FxError when a day has no rate."""

    def __init__(self, reader: LedgerReader, fx: FxTable, currency: str) -> None:
        self.reader = reader
        self.fx = fx
        self.currency = currency
        self.rates: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:  # events, conversations, latency, coverage, fields, ...
        return getattr(self.reader, name)

    def rate(self, ns: int) -> Decimal:
        day = utc_day(ns)
        value = self.fx.rate(self.currency, day)
        self.rates[day.isoformat()] = f"{value:f}"
        return value

    def days(self, start_ns: int, end_ns: int, filters: Filters,
              group_by: Sequence[str]) -> dict[tuple[str, ...], list[Point]]:
        """Per group, each UTC day's totals converted at the day's rate."""
        series = self.reader.series(start_ns, end_ns, "1d", filters, group_by, 0)
        return {key: [Point(p.start_ns, converted(p.totals, self.rate(p.start_ns))) for p in points]
                for key, points in series.items()}

    def totals(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str] = ()) -> list[Totals]:
        out = []
        for key, points in sorted(self.days(start_ns, end_ns, filters, group_by).items()):
            total = empty(key)
            for p in points:
                merge(total, p.totals)
            out.append(total)
        if not out and not group_by:
            return self.reader.totals(start_ns, end_ns, filters)  # no call: the zero-filled answer
        return out

    def series(self, start_ns: int, end_ns: int, step: Step, filters: Filters, group_by: Sequence[str] = (),
               utc_offset_s: int = 0) -> dict[tuple[str, ...], list[Point]]:
        if step in ("1m", "1h"):
            series = self.reader.series(start_ns, end_ns, step, filters, group_by, 0)
            return {key: [Point(p.start_ns, converted(p.totals, self.rate(p.start_ns))) for p in points]
                    for key, points in series.items()}
        starts = step_starts(start_ns, end_ns, step, 0)
        out: dict[tuple[str, ...], list[Point]] = {}
        for key, days in sorted(self.days(start_ns, end_ns, filters, group_by).items()):
            steps: dict[int, Totals] = {}
            for p in days:
                at = starts[bisect.bisect_right(starts, max(p.start_ns, start_ns)) - 1]
                merge(steps.setdefault(at, empty(key)), p.totals)
            out[key] = [Point(at, t) for at, t in sorted(steps.items())]
        return out

    def top(self, start_ns: int, end_ns: int, by: str, metric: Literal["cost", "tokens", "calls"], k: int,
            filters: Filters) -> list[Totals]:
        return self.ranked(start_ns, end_ns, filters, (by,), max(k, 0), metric).rows

    def ranked(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str], limit: int | None,
               metric: Metric = "cost") -> Ranked:
        """The reader's ranking (top `limit` by `metric`, ties by key, the exact remainder) of converted totals."""
        rows = [t for t in self.totals(start_ns, end_ns, filters, group_by) if t.calls]
        rows.sort(key=lambda t: (-_METRIC_VALUE[metric](t), t.key))
        if limit is None or len(rows) <= limit:
            return Ranked(rows, None, len(rows), limit)
        rest = empty(())
        for t in rows[limit:]:
            merge(rest, t)
        return Ranked(rows[:limit], rest, len(rows), limit)

    def each_group(self, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                   metric: Metric = "cost") -> Iterator[Totals]:
        return iter(self.ranked(start_ns, end_ns, filters, group_by, None, metric).rows)

    def series_ranked(self, start_ns: int, end_ns: int, step: Step, filters: Filters, group_by: Sequence[str],
                      limit: int | None, utc_offset_s: int = 0) -> Iterator[tuple[int, Ranked]]:
        """Per step (UTC: a rate is a day's), the step's ranking."""
        starts = step_starts(start_ns, end_ns, step, 0)
        for i, first in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else end_ns
            ranked = self.ranked(max(first, start_ns), min(stop, end_ns), filters, group_by, limit)
            if ranked.groups:
                yield first, ranked


_METRIC_VALUE: dict[str, Callable[[Totals], int]] = {
    "cost": lambda t: t.cost_total_pico, "tokens": lambda t: t.tokens_total, "calls": lambda t: t.calls}


RULE = ("each UTC day's USD amount of every figure converted at that day's rate (or the newest within the "
        "table's gap before it), rounded half-even to 10^-12 of the currency, days added exactly")


def currency_reader(reader: LedgerReader, config: Config, code: str) -> CurrencyReader | None:
    """The converting reader for `code` (None for USD); ParamError naming `currency` when there is no table
    or no rate for it."""
    if code in ("", USD):
        return None
    try:
        fx = load_fx(config)
    except ConfigError as exc:
        raise ParamError(f"currency: exchange rates cannot be read: {exc}", "currency") from None
    if fx is None:
        raise ParamError("currency: no exchange rates are configured (pricing.fx); reports are in USD", "currency")
    if code not in fx.rates:
        raise ParamError(f"currency: no exchange rates for {code!r}; known: {', '.join(['USD', *fx.currencies])}",
                         "currency")
    return CurrencyReader(reader, fx, code)


def relabel(report: Report, fx: CurrencyReader) -> Report:
    """The report's money labelled in the currency, and the rates used named (summary, every table's note)."""
    code = fx.currency
    used = ", ".join(f"{day} {rate}" for day, rate in sorted(fx.rates.items()))
    note = f"Amounts in {code} (1 USD = rate {code}): {used}." if used else f"Amounts in {code}."
    for table in report.tables:
        table.columns = [replace(c, title=c.title.replace("(USD)", f"({code})")) for c in table.columns]
        table.note = f"{table.note} {note}".strip()
    report.summary = {**report.summary, "currency": code,
                      "fx": {"base": USD, "rule": RULE, "rates": dict(sorted(fx.rates.items()))}}
    return report
