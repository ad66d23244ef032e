"""The one shape every report takes before it is rendered: titled tables of typed columns.

Renderers (JSON, CSV, XLSX, PDF) only format these cells, so every format carries the same figures.
Cell types: "text" (str), "int" (int), "usd" (int, 10^-12 USD), "decimal" (Decimal), "ratio"
(Decimal share, 0.25 = 25 %), "percent" (Decimal in percent, 10.5 = 10.5 %), "time" (int, Unix ns).
A money cell is None (null, blank) where its cost is unknown: every call behind it unpriced. Rows
built from `Totals` carry `calls_unpriced`, `calls_upper_bound` and `exactness` (render.exactness).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from genai_meter.ledger.model import Totals
from genai_meter.ledger.units import unit_class
from genai_meter.money import usd_text
from genai_meter.reports.render.exactness import (
    calls_partial,
    calls_unpriced,
    calls_upper_bound,
    cost_known,
    exactness,
    exactness_json,
    exactness_of,
)
from genai_meter.reports.service.ranges import iso

Kind = Literal["text", "int", "usd", "decimal", "ratio", "percent", "time"]
Cell = str | int | Decimal | None
TOKEN_CLASSES: tuple[str, ...] = ("input", "cache_read", "cache_write", "output", "reasoning")
COST_CLASSES: tuple[str, ...] = TOKEN_CLASSES + ("request",)
_PLACES = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    kind: Kind


@dataclass(slots=True)
class Chart:
    """A chart of a table: `label` column on the category axis, `values` columns as series."""

    kind: Literal["bar", "line", "pie"]
    label: str
    values: tuple[str, ...]
    title: str


@dataclass(frozen=True, slots=True)
class Remainder:
    """The last row of a table sums `groups` groups past the first `limit` (ranked by cost)."""

    groups: int
    limit: int


@dataclass(slots=True)
class Table:
    """`rows` in memory; or, for an export of every row, `stream` yields them (a CSV answer streams it)
    and `rows` is empty. `remainder` says when the last row sums the groups past a limit."""

    name: str
    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    chart: Chart | None = None
    note: str = ""
    remainder: Remainder | None = None
    stream: Callable[[], Iterator[list[Cell]]] | None = None

    def column_index(self, key: str) -> int:
        return next(i for i, column in enumerate(self.columns) if column.key == key)


@dataclass(slots=True)
class Report:
    """A report ready to render; `summary` is the JSON head (decimals already strings)."""

    kind: str
    title: str
    start_ns: int
    end_ns: int
    filters: dict[str, list[str]]
    group_by: list[str]
    coverage: dict[str, str | None]
    summary: dict[str, object]
    tables: list[Table]
    primary: str  # the table CSV gives by default
    omitted: list[str] = field(default_factory=list)  # tables of the kind not built (a CSV export of another)

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)


def ratio(part: int, whole: int) -> Decimal:
    """part / whole rounded half-even to 6 places; 0 when whole is 0."""
    if whole == 0:
        return Decimal(0).quantize(_PLACES)
    return (Decimal(part) / Decimal(whole)).quantize(_PLACES, rounding=ROUND_HALF_EVEN)


def per(amount: int, count: int) -> Decimal:
    """amount / count to 6 places (tokens per call); 0 when count is 0."""
    return ratio(amount, count)


def cell_text(kind: Kind, value: Cell) -> str:
    """A cell as text, exactly (money with 12 decimals, times RFC 3339)."""
    if value is None:
        return ""
    if kind == "usd":
        return usd_text(int(value))
    if kind == "time":
        return iso(int(value))
    if isinstance(value, Decimal):
        return f"{value:f}"
    return str(value)


def exactness_columns(prefix: str = "", title: str = "") -> list[Column]:
    """The columns that say whether a row's money is exact (`prefix` for a second period's)."""
    return [Column(f"{prefix}calls_unpriced", f"{title}Unpriced requests", "int"),
            Column(f"{prefix}calls_upper_bound", f"{title}Upper-bound requests", "int"),
            Column(f"{prefix}calls_partial", f"{title}Partly priced requests", "int"),
            Column(f"{prefix}exactness", f"{title}Exactness", "text")]


def exactness_cells(totals: Totals) -> list[Cell]:
    return [calls_unpriced(totals), calls_upper_bound(totals), calls_partial(totals), exactness(totals)]


def known(totals: Totals, pico: int) -> int | None:
    """`pico` when the cost of `totals` is known, None when every call is unpriced."""
    return pico if cost_known(totals) else None


def per_priced_call(totals: Totals) -> int | None:
    """Cost per priced request, rounded down to the pico-dollar (None when no call is priced)."""
    priced = totals.calls - calls_unpriced(totals)
    return totals.cost_total_pico // priced if priced > 0 else None if totals.calls else 0


def group_columns(group_by: list[str]) -> list[Column]:
    """The columns of a per-group totals row, keys first, in a stable order."""
    columns = [Column(name, name.replace("_", " ").capitalize(), "text") for name in group_by]
    columns += [Column("calls", "Requests", "int"), Column("successes", "Successes", "int"),
                Column("failures", "Failures", "int"), Column("error_rate", "Error rate", "ratio")]
    columns += [Column(f"tokens_{c}", f"Tokens {c.replace('_', ' ')}", "int") for c in TOKEN_CLASSES]
    columns += [Column("tokens_in", "Input tokens (all)", "int"), Column("tokens_out", "Output tokens (all)", "int"),
                Column("tokens_total", "Total tokens", "int"),
                Column("tokens_per_call", "Tokens per request", "decimal"),
                Column("cost_usd", "Cost (USD)", "usd"), Column("cost_per_call_usd", "Cost per priced request (USD)",
                                                                "usd")]
    columns += [Column(f"cost_{c}_usd", f"Cost {c.replace('_', ' ')} (USD)", "usd") for c in COST_CLASSES]
    columns += [Column("cost_units_usd", "Cost billed units (USD)", "usd")]
    columns += exactness_columns()
    columns += [Column("share_of_cost", "Share of cost", "ratio")]
    return columns


def tokens_in(totals: Totals) -> int:
    return sum(totals.tokens.get(c, 0) for c in ("input", "cache_read", "cache_write"))


def tokens_out(totals: Totals) -> int:
    return totals.tokens.get("output", 0) + totals.tokens.get("reasoning", 0)


def group_row(totals: Totals, whole_cost: int) -> list[Cell]:
    """One row of `group_columns` for `totals`; money cells None when every call is unpriced (a hot path of
    exports: each figure computed once)."""
    cost, tokens, calls = totals.cost_total_pico, totals.tokens, totals.calls
    counted = [tokens.get(c, 0) for c in TOKEN_CLASSES]
    tokens_total = sum(counted)
    unpriced = calls_unpriced(totals)
    priced = calls - unpriced
    is_known = not (calls and priced <= 0)
    row: list[Cell] = list(totals.key)
    row += [calls, calls - totals.errors, totals.errors, ratio(totals.errors, calls)]
    row += counted
    row += [sum(counted[:3]), sum(counted[3:]), tokens_total, per(tokens_total, calls),
            cost if is_known else None, cost // priced if priced > 0 else None if calls else 0]
    row += [totals.cost_pico.get(c, 0) if is_known else None for c in COST_CLASSES]
    row += [totals.units.cost_total_pico if is_known else None]
    row += [unpriced, calls_upper_bound(totals), calls_partial(totals),
            exactness_of(unpriced, calls_upper_bound(totals), calls_partial(totals))]
    row += [ratio(cost, whole_cost) if is_known else None]
    return row


def _usd_or_null(pico: int | None) -> str | None:
    return usd_text(pico) if pico is not None else None


def summary_json(totals: Totals) -> dict[str, object]:
    """The summary head: the ledger's keys (`calls`, `cost_usd`, `tokens`) plus derived figures and exactness.

    `cost_usd` is null when every call is unpriced (never "0")."""
    cost = totals.cost_total_pico
    return {
        "calls": totals.calls,
        "successes": totals.calls - totals.errors,
        "failures": totals.errors,
        "error_rate": f"{ratio(totals.errors, totals.calls):f}",
        "cost_usd": _usd_or_null(known(totals, cost)),
        "tokens": {c: totals.tokens.get(c, 0) for c in TOKEN_CLASSES},
        "tokens_in": tokens_in(totals),
        "tokens_out": tokens_out(totals),
        "tokens_total": totals.tokens_total,
        "tokens_per_call": f"{per(totals.tokens_total, totals.calls):f}",
        "cost_per_call_usd": _usd_or_null(per_priced_call(totals)),
        "cost_by_class_usd": {**{c: _usd_or_null(known(totals, totals.cost_pico.get(c, 0))) for c in COST_CLASSES},
                              **{c: _usd_or_null(known(totals, v)) for c, v in totals.units.by_class().items()}},
        "units": units_json(totals),
        "unpriced_calls": totals.unpriced,
        "unmetered_calls": totals.unmetered,
        "invalid_calls": totals.invalid,
        **exactness_json(totals),
    }


def units_json(totals: Totals) -> dict[str, dict[str, object]]:
    """The billed units beyond the six classes: per unit its quantity, cost and report class."""
    units = totals.units
    return {name: {"quantity": units.quantity[name], "class": unit_class(name),
                   "cost_usd": _usd_or_null(known(totals, units.cost_pico.get(name, 0)))}
            for name in sorted(units.quantity)}


def percent_change(now: int, before: int) -> Decimal | None:
    """(now - before) / before in percent, 6 places; None when `before` is 0."""
    return ratio(now - before, before) * 100 if before else None


def change_json(current: Totals, previous: Totals) -> dict[str, object]:
    """Differences against the previous period (money exact, percentages to 6 places); `exactness` is the
    weaker of the two periods'."""
    cur, prev = current.cost_total_pico, previous.cost_total_pico
    both = known(current, cur) is not None and known(previous, prev) is not None
    calls_pct, cost_pct = percent_change(current.calls, previous.calls), percent_change(cur, prev)
    merged = zero_totals()
    merge(merged, current)
    merge(merged, previous)
    return {
        "calls": current.calls - previous.calls,
        "calls_pct": f"{calls_pct:f}" if calls_pct is not None else None,
        "cost_usd": usd_text(cur - prev) if both else None,
        "cost_pct": f"{cost_pct:f}" if cost_pct is not None and both else None,
        "tokens_total": current.tokens_total - previous.tokens_total,
        "exactness": exactness(merged),
    }


def zero_totals(key: tuple[str, ...] = ()) -> Totals:
    return Totals(key=key, tokens=dict.fromkeys(TOKEN_CLASSES, 0), cost_pico=dict.fromkeys(COST_CLASSES, 0))


def merge(into: Totals, other: Totals) -> None:
    """Add `other`'s sums into `into` (exact integers)."""
    into.calls += other.calls
    into.errors += other.errors
    into.unpriced += other.unpriced
    into.unmetered += other.unmetered
    into.invalid += other.invalid
    for c, n in other.tokens.items():
        into.tokens[c] = into.tokens.get(c, 0) + n
    for c, n in other.cost_pico.items():
        into.cost_pico[c] = into.cost_pico.get(c, 0) + n
    into.list_cost_pico += other.list_cost_pico
    into.units.merge(other.units)
    into.duration_s_sum += other.duration_s_sum
    into.weighted_calls += other.weighted_calls
