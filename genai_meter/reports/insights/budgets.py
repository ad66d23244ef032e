"""Forecast and budget answers, computed from the ledger's daily series.

Budgets: the spend of each configured budget in its current calendar period (exact, from the
ledger, with `genai_meter.periods.period_of`), its state against the thresholds (75/90/95/100 ->
info/warning/critical/exceeded), the daily average, the forecast at period end and the day the
likely forecast crosses 100 %.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from genai_meter.config import BudgetConfig, Config
from genai_meter.ledger.model import LedgerReader
from genai_meter.money import usd_text
from genai_meter.periods import NS, local_date, local_midnight_ns, period_of
from genai_meter.reports.insights.forecast import Band, cumulative, forecast_daily
from genai_meter.reports.service.params import NotFound
from genai_meter.reports.service.ranges import iso
from genai_meter.reports.service.scopes import Scope, apply_scope, scope_covers

HISTORY_DAYS = 56  # days of history a forecast is fitted on
DAY = 86400 * NS
LABEL_TO_FIELD = {"service_name": "service"}
_PCT = Decimal("0.01")


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


def _band_json(day_ns: int, cost: Band, tokens: Band) -> dict[str, object]:
    def usd(x: float) -> str:
        return f"{Decimal(repr(x)).quantize(Decimal('0.000001'), rounding=ROUND_HALF_EVEN):f}"

    return {"day": iso(day_ns), "cost_usd": {"conservative": usd(cost.low), "likely": usd(cost.likely),
                                              "aggressive": usd(cost.high)},
            "tokens": {"conservative": round(tokens.low), "likely": round(tokens.likely),
                       "aggressive": round(tokens.high)}}


def forecast_payload(reader: LedgerReader, filters: dict[str, list[str]], now_ns: int, offset: timedelta,
                     horizon_days: int) -> dict[str, object]:
    """Daily cost and token forecasts for `horizon_days` from today, with the month's projected end."""
    history = daily_history(reader, filters, now_ns, offset)
    cost_hist = [p / 1e12 for p in history.cost_pico]
    costs, method = forecast_daily(cost_hist, horizon_days + 31)
    tokens, _ = forecast_daily([float(t) for t in history.tokens], horizon_days + 31)
    today = local_midnight_ns(local_date(now_ns, offset), offset)
    days = [today + i * DAY for i in range(horizon_days + 31)]
    month = period_of("month", offset, now_ns)
    spent = reader.totals(month.start_ns, now_ns, filters)
    spent_pico = spent[0].cost_total_pico if spent else 0
    month_end = _period_end(spent_pico, costs, days, now_ns, month.end_ns, today)
    return {
        "method": method,
        "history_days": len(history.start_ns),
        "history": [{"day": iso(d), "cost_usd": usd_text(c), "tokens": t}
                    for d, c, t in zip(history.start_ns, history.cost_pico, history.tokens)],
        "days": [_band_json(d, c, t) for d, c, t in list(zip(days, costs, tokens))[:horizon_days]],
        "month": {"period": month.label, "spent_usd": usd_text(spent_pico), **month_end},
    }


def _period_end(spent_pico: int, costs: list[Band], days: list[int], now_ns: int, end_ns: int,
                today: int) -> dict[str, object]:
    """Spend at period end (conservative/likely/aggressive) given what is spent so far."""
    remaining: list[Band] = []
    for band, day in zip(costs, days):
        if day >= end_ns:
            break
        share = 1.0
        if day == today:  # the rest of today
            share = max(0.0, (day + DAY - now_ns) / DAY)
        remaining.append(Band(band.low * share, band.likely * share, band.high * share))
    spent = spent_pico / 1e12
    total = cumulative(remaining, spent)[-1] if remaining else Band(spent, spent, spent)
    return {"projected_usd": {"conservative": f"{total.low:.6f}", "likely": f"{total.likely:.6f}",
                              "aggressive": f"{total.high:.6f}"}}


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
    """(state, severity) for a percentage of the limit."""
    if pct >= 100:
        return "exceeded", "critical"
    crossed = [t for t in thresholds if pct >= t and t < 100]
    if not crossed:
        return "ok", "none"
    below = [t for t in thresholds if t < 100]
    rank = below.index(max(crossed))
    names = ["info", "warning", "critical"]
    name = names[max(0, len(names) - (len(below) - rank))]
    return name, name


def budget_payload(reader: LedgerReader, budget: BudgetConfig, now_ns: int, scope: Scope) -> dict[str, object]:
    """One budget's figures; raises `NotFound` when outside `scope`."""
    if not visible(budget, scope):
        raise NotFound(f"budget {budget.name!r} not found", "name")
    period = period_of(budget.period, budget.offset, now_ns)
    filters = apply_scope(budget_filters(reader, budget, period.start_ns, now_ns), scope)
    rows = reader.totals(period.start_ns, now_ns, filters)
    usd = budget.unit == "usd"
    spent_exact = (rows[0].cost_total_pico if usd else rows[0].tokens_total) if rows else 0
    spent = Decimal(spent_exact).scaleb(-12) if usd else Decimal(spent_exact)
    pct = (spent / budget.limit * 100).quantize(_PCT, rounding=ROUND_HALF_EVEN)
    state, severity = state_of(pct, budget.thresholds)
    elapsed_days = Decimal(max(now_ns - period.start_ns, 1)) / DAY
    history = daily_history(reader, filters, now_ns, budget.offset)
    series = [p / 1e12 for p in history.cost_pico] if usd else [float(t) for t in history.tokens]
    today = local_midnight_ns(local_date(now_ns, budget.offset), budget.offset)
    horizon = int((period.end_ns - today) // DAY) + 1
    bands, method = forecast_daily(series, horizon)
    days = [today + i * DAY for i in range(horizon)]
    end = _period_end(int(spent * 10**12) if usd else int(spent) * 10**12, bands, days, now_ns, period.end_ns, today)
    if not usd:
        projected = end["projected_usd"]
        assert isinstance(projected, dict)
        end = {"projected_tokens": {k: str(round(Decimal(v))) for k, v in projected.items()}}
    crossing = None
    running = float(spent)
    if spent >= budget.limit:
        crossing = _crossed_on(history, reader, budget, filters, period.start_ns, now_ns)
    else:
        for band, day in zip(bands, days):
            share = max(0.0, (day + DAY - now_ns) / DAY) if day == today else 1.0
            running += band.likely * share
            if day < period.end_ns and running >= float(budget.limit):
                crossing = iso(day)
                break
    fmt = usd_text(spent_exact) if usd else str(spent_exact)
    return {
        "name": budget.name, "period": budget.period, "period_label": period.label, "from": iso(period.start_ns),
        "to": iso(period.end_ns), "unit": budget.unit, "limit": f"{budget.limit:f}", "spent": fmt,
        "percent": f"{pct:f}", "state": state, "severity": severity, "thresholds": budget.thresholds,
        "daily_average": f"{(spent / elapsed_days).quantize(Decimal('0.000001')):f}",
        "forecast_method": method, **end, "crossing_day": crossing, "match": budget.match,
    }


def _crossed_on(history: Daily, reader: LedgerReader, budget: BudgetConfig, filters: dict[str, list[str]],
                start: int, now_ns: int) -> str | None:
    """The day the spend reached the limit (already exceeded)."""
    series = reader.series(start, now_ns, "1d", filters, (), int(budget.offset.total_seconds()))
    running = Decimal(0)
    points = sorted((p.start_ns, p.totals) for pts in series.values() for p in pts)
    for day, t in points:
        running += Decimal(t.cost_total_pico).scaleb(-12) if budget.unit == "usd" else Decimal(t.tokens_total)
        if running >= budget.limit:
            return iso(day)
    return None


def budgets_payload(config: Config, reader: LedgerReader, now_ns: int, scope: Scope) -> list[dict[str, object]]:
    """Every budget the caller may see."""
    return [budget_payload(reader, b, now_ns, scope) for b in config.budgets if visible(b, scope)]
