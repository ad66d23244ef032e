"""The four reports (summary, detailed, cost, trend) as `Report` tables, computed from a `LedgerReader`.

Every figure is an exact sum of the ledger's integers; nothing here touches SQL. The caller passes
filters that already carry the caller's scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from genai_meter.ledger import deadline
from genai_meter.ledger.model import LedgerReader, Ranked, Step, Totals
from genai_meter.money import to_pico
from genai_meter.periods import NS, local_date, local_midnight_ns
from genai_meter.reports.insights.buckets import filled_series
from genai_meter.reports.insights.budgets import daily_history
from genai_meter.reports.insights.forecast import describe, forecast_daily
from genai_meter.reports.insights.grouped import (
    OTHER,
    fill_ranked,
    remainder_note,
    rest_key,
    series_table,
    stream_groups,
)
from genai_meter.reports.render.exactness import cost_known
from genai_meter.reports.render.tables import (
    COST_CLASSES,
    TOKEN_CLASSES,
    Cell,
    Chart,
    Column,
    Remainder,
    Report,
    Table,
    change_json,
    exactness_cells,
    exactness_columns,
    group_columns,
    group_row,
    known,
    merge,
    percent_change,
    ratio,
    summary_json,
    tokens_in,
    zero_totals,
)
from genai_meter.reports.service.ranges import Window, iso

KINDS: tuple[str, ...] = ("summary", "detailed", "cost", "trend")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(slots=True)
class Query:
    """One report request, validated and scoped."""

    reader: LedgerReader
    window: Window
    filters: dict[str, list[str]]
    group_by: list[str]
    step: Step
    compare: bool
    top: int
    offset: timedelta
    max_rows: int  # the most groups a table holds before the rest is summed in one row
    extra_models: tuple[tuple[str, str], ...] = ()  # (provider, model) configured in the price overrides
    every_group: bool = False  # a CSV export: every group, streamed (no remainder row)
    per_step: int | None = None  # a trend by group: the groups of each step (default: about max_rows x 10 rows)
    section: str | None = None  # a CSV export gives this table alone ('': the primary); None: every table

    def wants(self, name: str) -> bool:
        """Whether table `name`, not the report's primary, is to be built."""
        return self.section is None or self.section == name

    @property
    def limit(self) -> int | None:
        return None if self.every_group else self.max_rows


def _one(reader: LedgerReader, start: int, end: int, filters: dict[str, list[str]]) -> Totals:
    rows = reader.totals(start, end, filters)
    return rows[0] if rows else zero_totals()


def coverage_json(reader: LedgerReader) -> dict[str, str | None]:
    cov = reader.coverage()
    return {"first_call": iso(cov.first_ns) if cov.first_ns is not None else None,
            "last_call": iso(cov.last_ns) if cov.last_ns is not None else None,
            "raw_since": iso(cov.raw_since_ns) if cov.raw_since_ns is not None else None}


def _groups_table(name: str, title: str, rows: list[Totals], group_by: list[str], whole: int, limit: int) -> Table:
    """A table of the few groups given (totals rows, models): every one, ranked by cost."""
    ordered = sorted(rows, key=lambda t: (-t.cost_total_pico, -t.calls, t.key))
    shown = [group_row(t, whole) for t in deadline.checked(ordered[:limit])]
    table = Table(name, title, group_columns(group_by), shown)
    if group_by:
        table.chart = Chart("bar", group_by[0], ("cost_usd",), f"Cost by {', '.join(group_by)} (USD)")
    return table


def _ranked_table(q: Query, name: str, title: str, group_by: list[str], whole: Callable[[], int]) -> tuple[
        Table, Ranked | None]:
    """The groups of the window: the top `q.limit` and the exact remainder row, or every group streamed
    (`whole`, the window's cost, is then read as the rows are)."""
    table = Table(name, title, group_columns(group_by))
    table.chart = Chart("bar", group_by[0], ("cost_usd",), f"Cost by {', '.join(group_by)} (USD)")
    if q.limit is None:
        stream_groups(table, q.reader, q.window.start_ns, q.window.end_ns, q.filters, group_by,
                      lambda t: group_row(t, whole()))
        return table, None
    ranked = q.reader.ranked(q.window.start_ns, q.window.end_ns, q.filters, group_by, q.limit)
    total = sum(t.cost_total_pico for t in _parts(ranked) or [])
    fill_ranked(table, ranked, len(group_by), lambda t: group_row(t, total))
    return table, ranked


def _parts(ranked: Ranked | None) -> list[Totals] | None:
    """Every group of a ranked answer (the remainder included): they add up to the window's total."""
    return None if ranked is None else ranked.rows + ([ranked.rest] if ranked.rest is not None else [])


def _sum(rows: list[Totals]) -> Totals:
    """The exact total of group rows (every call is in exactly one group)."""
    total = zero_totals()
    for row in deadline.checked(rows):
        merge(total, row)
    return total


def _base(q: Query, kind: str, title: str, groups: list[Totals] | None = None) -> tuple[Report, Totals]:
    """The report head and totals table; `groups` (any grouping of the window) saves a ledger query."""
    current = _sum(groups) if groups is not None else _one(q.reader, q.window.start_ns, q.window.end_ns, q.filters)
    summary = summary_json(current)
    report = Report(kind, title, q.window.start_ns, q.window.end_ns, q.filters, q.group_by, coverage_json(q.reader),
                    summary, [], "totals")
    report.tables.append(_groups_table("totals", "Totals", [current], [], current.cost_total_pico, 1))
    if q.compare:
        previous = _one(q.reader, q.window.previous_start_ns, q.window.previous_end_ns, q.filters)
        summary["previous"] = {"from": iso(q.window.previous_start_ns), "to": iso(q.window.previous_end_ns),
                               **summary_json(previous)}
        summary["change"] = change_json(current, previous)
        prev_table = _groups_table("previous", "Previous period", [previous], [], previous.cost_total_pico, 1)
        report.tables.append(prev_table)
    return report, current


def summary(q: Query) -> Report:
    """Requests, successes, failures, tokens by class, cost by class, per-request figures, flags."""
    if not q.group_by:
        return _base(q, "summary", "Usage summary")[0]
    whole: list[int] = []
    table, ranked = _ranked_table(q, "groups", "By " + ", ".join(q.group_by), q.group_by, lambda: whole[0])
    report, current = _base(q, "summary", "Usage summary", _parts(ranked))
    whole.append(current.cost_total_pico)
    report.tables.append(table)
    report.primary = "groups"
    return report


TOP_TITLES = ("cost", "tokens", "requests")  # the top tables of a detailed report, by cost, tokens and calls


def _top_tables(q: Query, by: str, groups: list[Totals] | None) -> list[Table]:
    """Top-k by cost, tokens and requests; from `groups` (already grouped by `by` alone) when given."""
    tables = []
    keys: dict[str, Callable[[Totals], int]] = {"cost": lambda t: t.cost_total_pico,
                                                "tokens": lambda t: t.tokens_total, "calls": lambda t: t.calls}
    for metric, title in zip(("cost", "tokens", "calls"), TOP_TITLES):
        if groups is not None and (metric == "cost" or len(groups) <= q.max_rows):  # every group, or the top by cost
            rank = keys[metric]
            rows = sorted((t for t in groups if t.key[:1] != (OTHER,)), key=lambda t: (-rank(t), t.key))[:q.top]
        else:
            rows = q.reader.top(q.window.start_ns, q.window.end_ns, by, metric, q.top,  # type: ignore[arg-type]
                                q.filters)
        columns = [Column(by, by.capitalize(), "text"), Column("calls", "Requests", "int"),
                   Column("tokens_in", "Input tokens", "int"), Column("tokens_out", "Output tokens", "int"),
                   Column("tokens_total", "Total tokens", "int"), Column("cost_usd", "Cost (USD)", "usd"),
                   *exactness_columns()]
        table = Table(f"top_{title}_{by}", f"Top {q.top} {by} by {title}", columns)
        for t in rows:
            tin = tokens_in(t)
            table.rows.append([t.key[0] if t.key else "", t.calls, tin, t.tokens_total - tin, t.tokens_total,
                               known(t, t.cost_total_pico), *exactness_cells(t)])
        value = {"cost": "cost_usd", "tokens": "tokens_total", "calls": "calls"}[metric]
        table.chart = Chart("bar", by, (value,), table.title)
        tables.append(table)
    return tables


def _requests_by_model(q: Query) -> Table:
    rows = q.reader.totals(q.window.start_ns, q.window.end_ns, q.filters, ["provider", "model"])
    seen: dict[tuple[str, ...], Totals] = {t.key: t for t in rows}
    earlier = q.reader.totals(q.window.previous_start_ns, q.window.previous_end_ns, q.filters, ["provider", "model"]) \
        if len(seen) < q.max_rows else []
    for t in deadline.checked(earlier):
        seen.setdefault(t.key, zero_totals(t.key))
    for pair in q.extra_models:
        seen.setdefault(pair, zero_totals(pair))
    columns = [Column("provider", "Provider", "text"), Column("model", "Model", "text"),
               Column("calls", "Requests", "int"), Column("tokens_total", "Total tokens", "int"),
               Column("cost_usd", "Cost (USD)", "usd"), *exactness_columns()]
    table = Table("requests_by_model", "Requests by model (zero included)", columns)
    ordered = sorted(seen.items(), key=lambda kv: (-kv[1].calls, kv[0]))
    shown = [t for _, t in ordered[:q.max_rows]]
    if len(ordered) > q.max_rows:  # the others summed in a last row: the rows add up to the total
        other = zero_totals(rest_key(2))
        for _, t in deadline.checked(ordered[q.max_rows:]):
            merge(other, t)
        shown.append(other)
        table.remainder = Remainder(len(ordered) - q.max_rows, q.max_rows)
        table.note = (f"The first {q.max_rows} models by requests, and the other {len(ordered) - q.max_rows} "
                      f"summed in the last row {OTHER}: the rows add up to the total.")
    for t in deadline.checked(shown):
        table.rows.append([t.key[0], t.key[1], t.calls, t.tokens_total, known(t, t.cost_total_pico),
                           *exactness_cells(t)])
    table.chart = Chart("bar", "model", ("calls",), "Requests by model")
    return table


def detailed(q: Query) -> Report:
    """The summary per group (default: by model), top-k tables, requests by model with zero rows."""
    group_by = q.group_by or ["model"]
    whole: list[int] = []
    table, ranked = _ranked_table(q, "groups", "By " + ", ".join(group_by), group_by, lambda: whole[0])
    report, current = _base(q, "detailed", "Detailed usage", _parts(ranked))
    whole.append(current.cost_total_pico)
    report.tables.append(table)
    report.primary = "groups"
    report.group_by = group_by
    tops = [f"top_{title}_{group_by[0]}" for title in TOP_TITLES]
    if any(q.wants(name) for name in tops):
        report.tables.extend(_top_tables(q, group_by[0], ranked.rows if ranked is not None and len(group_by) == 1
                                         and ranked.rest is None else None))
    else:
        report.omitted += tops
    if q.wants("requests_by_model"):
        report.tables.append(_requests_by_model(q))
    else:
        report.omitted.append("requests_by_model")
    return report


def cost(q: Query) -> Report:
    """Cost by model, by token class and by group, with shares and the change against the previous period."""
    now = q.reader.ranked(q.window.start_ns, q.window.end_ns, q.filters, ["provider", "model"], q.max_rows)
    now_rows = now.rows
    report, current = _base(q, "cost", "Cost report", _parts(now))
    whole = current.cost_total_pico
    before = {t.key: t for t in q.reader.totals(q.window.previous_start_ns, q.window.previous_end_ns, q.filters,
                                                ["provider", "model"])}
    columns = [Column("provider", "Provider", "text"), Column("model", "Model", "text"),
               Column("calls", "Requests", "int"), Column("tokens_total", "Total tokens", "int"),
               Column("cost_usd", "Cost (USD)", "usd"), Column("share_of_cost", "Share of cost", "ratio"),
               Column("previous_cost_usd", "Previous period (USD)", "usd"),
               Column("change_usd", "Change (USD)", "usd"), Column("change_pct", "Change", "percent"),
               *exactness_columns(), *exactness_columns("previous_", "Previous: ")]
    by_model = Table("by_model", "Cost by model", columns)
    if now.rest is not None:
        now.rest.key = rest_key(2)
        now_rows = [*now_rows, now.rest]
        by_model_rest = Remainder(now.groups - len(now.rows), q.max_rows)
    for t in deadline.checked(now_rows):
        prev = before.get(t.key) or zero_totals(t.key)
        by_model.rows.append([t.key[0], t.key[1], t.calls, t.tokens_total, known(t, t.cost_total_pico),
                              ratio(t.cost_total_pico, whole) if cost_known(t) else None,
                              known(prev, prev.cost_total_pico), *_change(t, prev), *exactness_cells(t),
                              *exactness_cells(prev)])
    by_model.chart = Chart("pie", "model", ("cost_usd",), "Share of cost by model")
    if now.rest is not None:
        by_model.remainder = by_model_rest
        by_model.note = remainder_note(by_model_rest.groups, by_model_rest.limit)
    classes = Table("by_token_class", "Cost by class", [
        Column("token_class", "Class", "text"), Column("tokens", "Tokens (units for unit classes)", "int"),
        Column("cost_usd", "Cost (USD)", "usd"), Column("share_of_cost", "Share of cost", "ratio"),
        *exactness_columns()])
    for c in COST_CLASSES:
        tokens = current.tokens.get(c, 0) if c in TOKEN_CLASSES else None  # per-request fees have no tokens
        pico = known(current, current.cost_pico.get(c, 0))
        classes.rows.append([c, tokens, pico, ratio(pico, whole) if pico is not None else None,
                             *exactness_cells(current)])
    quantities = current.units.quantity_by_class()
    for c, unit_pico in current.units.by_class().items():  # billed units by class: audio, image, per call, ...
        pico = known(current, unit_pico)
        classes.rows.append([c, quantities.get(c, 0), pico, ratio(pico, whole) if pico is not None else None,
                             *exactness_cells(current)])
    classes.chart = Chart("bar", "token_class", ("cost_usd",), "Cost by class")
    report.tables += [by_model, classes]
    report.primary = "by_model"
    if q.group_by:
        report.tables.append(_ranked_table(q, "groups", "Cost by " + ", ".join(q.group_by), q.group_by,
                                           lambda: whole)[0])
    return report


def _change(now: Totals, before: Totals) -> list[Cell]:
    """Change in USD and percent between two periods (None unless both costs are known)."""
    if not (cost_known(now) and cost_known(before)):
        return [None, None]
    return [now.cost_total_pico - before.cost_total_pico, percent_change(now.cost_total_pico, before.cost_total_pico)]


def _comparison_row(q: Query, name: str, start: int, end: int, prev_start: int, prev_end: int) -> list[Cell]:
    cur = _one(q.reader, start, end, q.filters)
    prev = _one(q.reader, prev_start, prev_end, q.filters)
    return [name, start, end, prev_start, prev_end, cur.calls, prev.calls, known(cur, cur.cost_total_pico),
            known(prev, prev.cost_total_pico), *_change(cur, prev), *exactness_cells(cur), *exactness_cells(prev)]


def trend(q: Query) -> Report:
    """Per-step series, the hour-of-day x day-of-week heatmap, week/period/year over year comparisons."""
    report, _ = _base(q, "trend", "Usage trend")
    w = q.window
    columns = [Column("start", "Step start", "time")] + [Column(g, g.capitalize(), "text") for g in q.group_by]
    columns += [Column("calls", "Requests", "int"), Column("failures", "Failures", "int"),
                Column("tokens_total", "Total tokens", "int"), Column("cost_usd", "Cost (USD)", "usd"),
                *exactness_columns()]
    table = Table("series", f"Per {q.step}", columns)

    def point(start: int, t: Totals) -> list[Cell]:
        return [start, *t.key, t.calls, t.errors, t.tokens_total, known(t, t.cost_total_pico), *exactness_cells(t)]

    if q.group_by:
        series_table(table, q.reader, w.start_ns, w.end_ns, q.step, q.filters, q.group_by,
                     None if q.every_group else q.max_rows * 10, int(q.offset.total_seconds()), point, q.per_step)
    else:
        series = filled_series(q.reader, w.start_ns, w.end_ns, q.step, q.filters, (), int(q.offset.total_seconds()))
        table.rows = [point(p.start_ns, p.totals) for pts in series.values() for p in deadline.checked(pts)]
    table.chart = Chart("line", "start", ("cost_usd",), f"Cost per {q.step} (USD)")
    report.tables.append(table)
    report.primary = "series"
    if (w.end_ns - w.start_ns) <= 5000 * 3600 * NS:
        hours = q.reader.series(w.start_ns, w.end_ns, "1h", q.filters, (), int(q.offset.total_seconds()))
        cells: dict[tuple[int, int], Totals] = {}
        for pts in deadline.checked(hours.values()):
            for p in pts:
                local = p.start_ns + int(q.offset.total_seconds()) * NS
                day = local_date(p.start_ns, q.offset).weekday()
                hour = (local // (3600 * NS)) % 24
                merge(cells.setdefault((day, hour), zero_totals()), p.totals)
        heat = Table("heatmap", "Busiest hours (day of week x hour of day)", [
            Column("day_of_week", "Day", "text"), Column("hour", "Hour", "int"), Column("calls", "Requests", "int"),
            Column("tokens_total", "Total tokens", "int"), Column("cost_usd", "Cost (USD)", "usd"),
            *exactness_columns()])
        for (day, hour), t in sorted(cells.items()):
            heat.rows.append([_DAYS[day], hour, t.calls, t.tokens_total, known(t, t.cost_total_pico),
                              *exactness_cells(t)])
        report.tables.append(heat)
    comp = Table("comparisons", "Comparisons", [
        Column("comparison", "Comparison", "text"), Column("from", "From", "time"), Column("to", "To", "time"),
        Column("previous_from", "Previous from", "time"), Column("previous_to", "Previous to", "time"),
        Column("calls", "Requests", "int"), Column("previous_calls", "Previous requests", "int"),
        Column("cost_usd", "Cost (USD)", "usd"), Column("previous_cost_usd", "Previous cost (USD)", "usd"),
        Column("change_usd", "Change (USD)", "usd"), Column("change_pct", "Change", "percent"),
        *exactness_columns(), *exactness_columns("previous_", "Previous: ")])
    week = 7 * 86400 * NS
    comp.rows.append(_comparison_row(q, "week_over_week", w.end_ns - week, w.end_ns, w.end_ns - 2 * week,
                                     w.end_ns - week))
    comp.rows.append(_comparison_row(q, "period_over_period", w.start_ns, w.end_ns, w.previous_start_ns,
                                     w.previous_end_ns))
    first = q.reader.coverage().first_ns
    year = 365 * 86400 * NS
    if first is not None and first <= w.start_ns - year:
        comp.rows.append(_comparison_row(q, "year_over_year", w.start_ns, w.end_ns, w.start_ns - year,
                                         w.end_ns - year))
    report.tables.append(comp)
    report.tables.append(_forecast_table(q))
    return report


def _forecast_table(q: Query, days: int = 14) -> Table:
    """The next `days` days of cost after the window's last day (conservative / likely / aggressive)."""
    history = daily_history(q.reader, q.filters, q.window.end_ns, q.offset)
    bands, method = forecast_daily([p / 1e12 for p in history.cost_pico], days)
    first = local_midnight_ns(local_date(q.window.end_ns, q.offset), q.offset)
    table = Table("forecast", f"Cost forecast, next {days} days ({describe(method, len(history.start_ns))})", [
        Column("day", "Day", "time"), Column("conservative_usd", "Conservative (USD)", "usd"),
        Column("likely_usd", "Likely (USD)", "usd"), Column("aggressive_usd", "Aggressive (USD)", "usd")])
    for i, band in enumerate(bands):  # estimates, to the micro-dollar
        table.rows.append([first + i * 86400 * NS, *(to_pico(Decimal(f"{v:.6f}")) for v in
                                                     (band.low, band.likely, band.high))])
    table.chart = Chart("line", "day", ("conservative_usd", "likely_usd", "aggressive_usd"),
                        "Cost per day (USD): likely, with the conservative-aggressive range")
    table.note = "Estimates (docs/reports.md, Forecast); money totals elsewhere are exact."
    return table


BUILDERS = {"summary": summary, "detailed": detailed, "cost": cost, "trend": trend}


def usd_decimal(pico: int) -> Decimal:
    return Decimal(pico).scaleb(-12)
