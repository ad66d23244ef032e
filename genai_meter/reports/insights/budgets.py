"""Budget and forecast answers, read from the ledger.

Budgets: the spend of each configured budget in its current calendar period (exact, from the
ledger, with `genai_meter.periods.period_of`), its state against the budget's own thresholds (the
first below 100 % -> info, the second -> warning, later ones -> critical, 100 % -> exceeded), the
daily average, the projection (insights.projection: run rate blended with history, a range, the
instant each line crosses 100 %), the instant an exceeded budget crossed it, and the chart's points.
Instants are given in the budget's UTC offset. A `~regex` match is expanded to the values seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from genai_meter.config import BudgetConfig, Config
from genai_meter.ledger.model import LedgerReader, Step, Totals
from genai_meter.money import usd_text
from genai_meter.periods import NS, local_date, local_midnight_ns, period_of
from genai_meter.promql.text import RATE_WINDOW
from genai_meter.reports.insights.forecast import Band, describe, forecast_daily
from genai_meter.reports.insights.projection import DAY_NS, Projection, RunRate, project, rate_span
from genai_meter.reports.render.exactness import calls_unpriced, calls_upper_bound, exactness
from genai_meter.reports.service.params import NotFound
from genai_meter.reports.service.ranges import iso
from genai_meter.reports.service.scopes import Scope, apply_scope, scope_covers

HISTORY_DAYS = 56  # days of history a forecast is fitted on
DAY = DAY_NS
LABEL_TO_FIELD = {"service_name": "service"}
SEVERITIES = ("info", "warning", "critical")  # of the thresholds below 100 %, in order; later ones critical
_PCT = Decimal("0.01")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


@dataclass(slots=True)
class Daily:
    start_ns: list[int]
    cost_pico: list[int]
    tokens: list[int]


def daily_history(reader: LedgerReader, filters: dict[str, list[str]], end_ns: int, offset: timedelta,
                  days: int = HISTORY_DAYS) -> Daily:
    """Whole local days before the day of `end_ns`, from the first day with a call (zeros filled)."""
    today = local_midnight_ns(local_date(end_ns, offset), offset)
    start = today - days * DAY
    series = reader.series(start, today, "1d", filters, (), int(offset.total_seconds()))
    by_day: dict[int, tuple[int, int]] = {}
    for points in series.values():
        for p in points:
            cost, tokens = by_day.get(p.start_ns, (0, 0))
            by_day[p.start_ns] = (cost + p.totals.cost_total_pico, tokens + p.totals.tokens_total)
    out = Daily([], [], [])
    if not by_day:
        return out
    day = min(by_day)
    while day < today:
        cost, tokens = by_day.get(day, (0, 0))
        out.start_ns.append(day)
        out.cost_pico.append(cost)
        out.tokens.append(tokens)
        day = local_midnight_ns(local_date(day + DAY + 3600 * NS, offset), offset)
    return out


def window_seconds(text: str) -> int:
    """'1h' -> 3600 (the RATE_WINDOW texts)."""
    return int(text[:-1]) * _UNIT_SECONDS[text[-1]]


def offset_text(offset: timedelta) -> str:
    """'+12:00' for a UTC offset."""
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_iso(ns: int, offset: timedelta) -> str:
    """RFC 3339 text of `ns` in the UTC `offset`, to the second: 2026-12-07T13:42:05+12:00."""
    moment = datetime.fromtimestamp(ns // NS, UTC) + offset
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + offset_text(offset)


def _value(t: Totals, usd: bool) -> float:
    return t.cost_total_pico / 1e12 if usd else float(t.tokens_total)


def run_rate(reader: LedgerReader, filters: dict[str, list[str]], now_ns: int, window_s: int, usd: bool) -> RunRate:
    """The spend of the last `window_s` and the seconds it took: from the first call with spend in it."""
    start = now_ns - window_s * NS
    series = reader.series(start, now_ns, "1m", filters)
    spend, first = 0.0, None
    for points in series.values():
        for p in points:
            value = _value(p.totals, usd)
            spend += value
            if value > 0 and (first is None or p.start_ns < first):
                first = p.start_ns
    if first is not None and first > start:  # spend began inside the window: when exactly, to the call
        first = _oldest_call(reader, filters, first, min(first + 60 * NS, now_ns)) or first
    return RunRate(spend, rate_span(None if first is None else max(first, start), now_ns, window_s), window_s)


def _oldest_call(reader: LedgerReader, filters: dict[str, list[str]], start: int, end: int,
                 pages: int = 20) -> int | None:
    """The end time of the oldest call in [start, end) (one minute: a few pages of the feed at most)."""
    oldest, cursor = None, ""
    for _ in range(pages):
        page = reader.events(filters, start_ns=start, end_ns=end, cursor=cursor, limit=500)
        if page.rows:
            oldest = page.rows[-1].end_ns
        if not page.next_cursor or not page.rows:
            break
        cursor = page.next_cursor
    return oldest


def local_midnights(start_ns: int, end_ns: int, offset: timedelta) -> list[int]:
    """Local midnights from the one at or before `start_ns` up to the last before `end_ns`."""
    day = local_date(start_ns, offset)
    out = []
    while (ns := local_midnight_ns(day, offset)) < end_ns:
        out.append(ns)
        day += timedelta(days=1)
    return out


def projection_of(reader: LedgerReader, filters: dict[str, list[str]], now_ns: int, offset: timedelta,
                  kind: str, start_ns: int, end_ns: int, spent: float, usd: bool,
                  limit: float | None) -> Projection:
    """The projection of the period [start_ns, end_ns) with `spent` so far (insights.projection)."""
    rate = run_rate(reader, filters, now_ns, window_seconds(RATE_WINDOW[kind]), usd)
    history = daily_history(reader, filters, now_ns, offset)
    values = [p / 1e12 for p in history.cost_pico] if usd else [float(t) for t in history.tokens]
    midnights = local_midnights(now_ns, end_ns, offset)
    days, method = forecast_daily(values, len(midnights)) if values else ([], "none")
    return project(spent, now_ns, start_ns, end_ns, rate, days, midnights, method, len(values), limit)


def _number(value: float, usd: bool) -> str:
    if usd:
        return f"{Decimal(repr(value)).quantize(Decimal('0.000001'), rounding=ROUND_HALF_EVEN):f}"
    return str(round(value))


def projection_json(p: Projection, offset: timedelta, usd: bool, limit: Decimal | None) -> dict[str, object]:
    """The projection as the API gives it (figures in the budget's unit, instants in its offset)."""
    def band(b: Band) -> dict[str, str]:
        return {"conservative": _number(b.low, usd), "likely": _number(b.likely, usd),
                "aggressive": _number(b.high, usd)}

    def when(ns: int | None) -> str | None:
        return local_iso(ns, offset) if ns is not None else None

    end = p.end
    state = "within"
    if limit is not None:
        state = "will_exceed" if end.likely >= float(limit) else "may_exceed" if end.high >= float(limit) else "within"
    return {
        "method": p.method,
        "method_text": _method_text(p),
        "rate_window_s": p.rate.window_s, "rate_span_s": p.rate.span_s,
        "rate_per_hour": _number(p.rate.per_second * 3600, usd),
        "average_per_hour": _number(p.average_per_second * 3600, usd),
        "history_days": p.history_days, "history_method": p.history_method,
        "history_weight": f"{p.history_weight:.2f}",
        "end": band(end), "state": state,
        "crossing": {"conservative": when(p.crossing[0]), "likely": when(p.crossing[1]),
                     "aggressive": when(p.crossing[2])},
    }


def _method_text(p: Projection) -> str:
    span = _duration(p.rate.span_s)
    text = f"the rate of the last {span}"
    if p.history_weight > 0:
        text += (f", blended {round(p.history_weight * 100)} % with the daily forecast "
                 f"({describe(p.history_method, p.history_days)})")
    return text


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} h" if hours < 48 else f"{hours // 24} days"
    if seconds >= 3600:
        minutes = seconds % 3600 // 60
        return f"{seconds // 3600} h" + (f" {minutes} min" if minutes else "")
    return f"{max(1, seconds // 60)} min"


def forecast_payload(reader: LedgerReader, filters: dict[str, list[str]], now_ns: int, offset: timedelta,
                     horizon_days: int) -> dict[str, object]:
    """Daily cost and token forecasts for `horizon_days` from today, with the month's projected end."""
    history = daily_history(reader, filters, now_ns, offset)
    costs, method = forecast_daily([p / 1e12 for p in history.cost_pico], horizon_days)
    tokens, _ = forecast_daily([float(t) for t in history.tokens], horizon_days)
    today = local_midnight_ns(local_date(now_ns, offset), offset)
    month = period_of("month", offset, now_ns)
    spent = reader.totals(month.start_ns, now_ns, filters)
    spent_pico = spent[0].cost_total_pico if spent else 0
    projection = projection_of(reader, filters, now_ns, offset, "month", month.start_ns, month.end_ns,
                               spent_pico / 1e12, True, None)
    projected = projection_json(projection, offset, True, None)
    return {
        "method": method,
        "method_text": describe(method, len(history.start_ns)),
        "history_days": len(history.start_ns),
        "history": [{"day": iso(d), "cost_usd": usd_text(c), "tokens": t}
                    for d, c, t in zip(history.start_ns, history.cost_pico, history.tokens)],
        "days": [{"day": iso(today + i * DAY), **_day_json(c, t)} for i, (c, t) in enumerate(zip(costs, tokens))],
        "month": {"period": month.label, "spent_usd": usd_text(spent_pico),
                  **(_exactness(spent[0]) if spent else _exactness(Totals())),
                  "projected_usd": projected["end"], "projection": projected},
    }


def _day_json(cost: Band, tokens: Band) -> dict[str, object]:
    return {"cost_usd": {"conservative": _number(cost.low, True), "likely": _number(cost.likely, True),
                         "aggressive": _number(cost.high, True)},
            "tokens": {"conservative": round(tokens.low), "likely": round(tokens.likely),
                       "aggressive": round(tokens.high)}}


def _exactness(t: Totals) -> dict[str, object]:
    """Whether the spend is exact: unpriced calls leave cost out, unmetered ones bound it from above."""
    return {"calls": t.calls, "calls_unpriced": calls_unpriced(t), "calls_upper_bound": calls_upper_bound(t),
            "exactness": exactness(t)}


def budget_filters(reader: LedgerReader, budget: BudgetConfig, start: int, end: int) -> dict[str, list[str]]:
    """The ledger filters of a budget's match; a `~regex` is expanded to the matching values seen."""
    filters: dict[str, list[str]] = {}
    for label, pattern in budget.match.items():
        field = LABEL_TO_FIELD.get(label, label)
        if pattern.startswith("~"):
            rx = re.compile(pattern[1:])
            values = [v for v in reader.dimension_values(field, start, end, {}, limit=100000) if rx.fullmatch(v)]
            filters[field] = values or ["\x00no-match"]
        else:
            filters[field] = [pattern]
    return filters


def visible(budget: BudgetConfig, scope: Scope) -> bool:
    """A scoped token sees a budget only when the budget's match lies inside its scope."""
    match = {LABEL_TO_FIELD.get(k, k): v for k, v in budget.match.items()}
    return scope_covers(scope, match)


def state_of(pct: Decimal, thresholds: list[int]) -> tuple[str, str]:
    """(state, severity) for a percentage of the limit, by the budget's own thresholds."""
    if pct >= 100:
        return "exceeded", "critical"
    below = [t for t in thresholds if t < 100]
    crossed = [i for i, t in enumerate(below) if pct >= t]
    if not crossed:
        return "ok", "none"
    name = SEVERITIES[min(crossed[-1], len(SEVERITIES) - 1)]
    return name, name


def status_text(pct: Decimal, thresholds: list[int]) -> str:
    """The state in words, naming the budget's own thresholds ("past 25 % (info); next: 50 %")."""
    passed = [t for t in thresholds if pct >= t]
    upcoming = [t for t in thresholds if pct < t]
    state, severity = state_of(pct, thresholds)
    if state == "exceeded":
        return "exceeded: past 100 %" + (f"; next threshold {upcoming[0]} %" if upcoming else "")
    if not passed:
        return f"within budget: below the first threshold ({thresholds[0]} %)" if thresholds else "within budget"
    return f"past {passed[-1]} % ({severity})" + (f"; next: {upcoming[0]} %" if upcoming else "")


def budget_payload(reader: LedgerReader, budget: BudgetConfig, now_ns: int, scope: Scope) -> dict[str, object]:
    """One budget's figures; raises `NotFound` when outside `scope`."""
    if not visible(budget, scope):
        raise NotFound(f"budget {budget.name!r} not found", "name")
    period = period_of(budget.period, budget.offset, now_ns)
    offset = budget.offset
    history_start = local_midnight_ns(local_date(now_ns, offset), offset) - HISTORY_DAYS * DAY
    filters = apply_scope(budget_filters(reader, budget, min(history_start, period.start_ns), now_ns), scope)
    rows = reader.totals(period.start_ns, now_ns, filters)
    totals = rows[0] if rows else Totals()
    usd = budget.unit == "usd"
    spent_exact = totals.cost_total_pico if usd else totals.tokens_total
    spent = Decimal(spent_exact).scaleb(-12) if usd else Decimal(spent_exact)
    pct = (spent / budget.limit * 100).quantize(_PCT, rounding=ROUND_HALF_EVEN)
    state, severity = state_of(pct, budget.thresholds)
    spent_text = usd_text(spent_exact) if usd else str(spent_exact)
    elapsed_days = Decimal(max(now_ns - period.start_ns, 1)) / DAY
    projection = projection_of(reader, filters, now_ns, offset, budget.period, period.start_ns, period.end_ns,
                               float(spent), usd, float(budget.limit))
    projected = projection_json(projection, offset, usd, budget.limit)
    crossed = crossed_at(reader, filters, period.start_ns, now_ns, budget) if spent >= budget.limit else None
    if spent >= budget.limit:  # already past: the projection crosses nothing any more
        projected["state"] = "exceeded"
        projected["crossing"] = {"conservative": None, "likely": None, "aggressive": None}
    day_of = crossed if crossed is not None else projection.crossing[1] if spent < budget.limit else None
    crossing_day = local_date(day_of, offset).isoformat() if day_of is not None else None
    passed = [t for t in budget.thresholds if pct >= t]
    upcoming = [t for t in budget.thresholds if pct < t]
    return {
        "name": budget.name, "period": budget.period, "period_label": period.label, "from": iso(period.start_ns),
        "to": iso(period.end_ns), "utc_offset": offset_text(offset), "now": local_iso(now_ns, offset),
        "unit": budget.unit, "limit": f"{budget.limit:f}", "spent": spent_text,
        **_exactness(totals),
        "percent": f"{pct:f}", "state": state, "severity": severity, "thresholds": budget.thresholds,
        "threshold_passed": passed[-1] if passed else None, "next_threshold": upcoming[0] if upcoming else None,
        "status": status_text(pct, budget.thresholds),
        "daily_average": f"{(spent / elapsed_days).quantize(Decimal('0.000001')):f}",
        "forecast_method": projection.method, "projection": projected,
        ("projected_usd" if usd else "projected_tokens"): projected["end"],
        "crossed_at": local_iso(crossed, offset) if crossed is not None else None,
        "crossing_day": crossing_day, "match": budget.match,
        "chart": chart_json(reader, filters, budget, period.start_ns, now_ns, period.end_ns, projection, spent_text),
    }


def _cumulative_points(reader: LedgerReader, filters: dict[str, list[str]], start: int, end: int, step: Step,
                       offset: timedelta, usd: bool) -> list[tuple[int, float, int]]:
    """(step start, value, exact value) per step with spend in [start, end), oldest first."""
    series = reader.series(start, end, step, filters, (), int(offset.total_seconds()))
    by_start: dict[int, tuple[float, int]] = {}
    for points in series.values():
        for p in points:
            value, exact = by_start.get(p.start_ns, (0.0, 0))
            by_start[p.start_ns] = (value + _value(p.totals, usd),
                                    exact + (p.totals.cost_total_pico if usd else p.totals.tokens_total))
    return [(s, v, e) for s, (v, e) in sorted(by_start.items())]


def crossed_at(reader: LedgerReader, filters: dict[str, list[str]], start: int, now_ns: int,
               budget: BudgetConfig) -> int | None:
    """The minute the period's spend reached the limit (exact sums: the hour first, then its minutes)."""
    usd = budget.unit == "usd"
    limit = int(budget.limit.scaleb(12)) if usd else int(budget.limit)
    running = 0
    for hour, _, exact in _cumulative_points(reader, filters, start, now_ns, "1h", budget.offset, usd):
        if running + exact < limit:
            running += exact
            continue
        minutes = _cumulative_points(reader, filters, max(hour, start), min(hour + 3600 * NS, now_ns), "1m",
                                     budget.offset, usd)
        for minute, _, spend in minutes:
            running += spend
            if running >= limit:
                return max(minute, start)
        return max(hour, start)
    return None


def chart_json(reader: LedgerReader, filters: dict[str, list[str]], budget: BudgetConfig, start: int, now_ns: int,
               end: int, projection: Projection, spent: str) -> dict[str, object]:
    """The budget chart's points: the cumulative spend at each step up to now (ending with the exact
    spend at now), then the projection's three lines from now to the period end (`end`)."""
    usd = budget.unit == "usd"
    step: Step = "1d" if budget.period == "month" else "1h"
    step_ns = DAY if step == "1d" else 3600 * NS  # fixed UTC offsets: every local day is 24 h
    per_step = {s: v for s, v, _ in _cumulative_points(reader, filters, start, now_ns, step, budget.offset, usd)}
    actual: list[list[str]] = []
    running = 0.0
    for at in range(start, now_ns, step_ns):
        actual.append([iso(at), _number(running, usd)])
        running += per_step.get(at, 0.0)
    actual.append([iso(now_ns), spent])
    lines = [[iso(t), _number(b.low, usd), _number(b.likely, usd), _number(b.high, usd)] for t, b in projection.path]
    return {"step": step, "from": iso(start), "to": iso(end), "actual": actual, "projection": lines}


def budgets_payload(config: Config, reader: LedgerReader, now_ns: int, scope: Scope) -> list[dict[str, object]]:
    """Every budget the caller may see."""
    return [budget_payload(reader, b, now_ns, scope) for b in config.budgets if visible(b, scope)]
