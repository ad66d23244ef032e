"""Forecast, budgets, savings advice and latency: `/api/v1/forecast`, `/budgets`, `/recommendations`, `/latency`."""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, Response, jsonify

from genai_meter.reports.insights.advice import cache_savings, cheaper_models, unpriced_models
from genai_meter.reports.insights.budgets import budget_payload, budgets_payload, forecast_payload
from genai_meter.reports.service.api import INT, NSTR, RANGE_PARAMS, STR, Endpoint, arr, context, days_ns, obj, route
from genai_meter.reports.service.params import NotFound, Param, ParamError
from genai_meter.reports.service.ranges import iso

bp = Blueprint("insights_api", __name__, url_prefix="/api/v1")
NUM = {"type": "number"}
BAND = obj({"conservative": STR, "likely": STR, "aggressive": STR})
NINT = {"type": ["integer", "null"]}
PROJECTION = obj({"method": {"enum": ["run_rate", "run_rate+history"]}, "method_text": STR, "rate_window_s": INT,
                  "rate_span_s": INT, "rate_per_hour": STR, "average_per_hour": STR, "history_days": INT,
                  "history_weight": STR, "end": BAND,
                  "state": {"enum": ["within", "may_exceed", "will_exceed", "exceeded"]},
                  "crossing": obj({"conservative": NSTR, "likely": NSTR, "aggressive": NSTR})})
FORECAST = Endpoint("/forecast", "/api/v1/forecast", "forecast",
                    "Projected cost and tokens per day (conservative / likely / aggressive) and the month's end",
                    (Param("horizon", "days ahead, e.g. 30d", pattern=r"([1-9]|[1-9][0-9]|[1-2][0-9][0-9]|3[0-5][0-9]|"
                                                                     r"36[0-6])d", default="30d", max_length=4),),
                    schema=obj({"method": STR, "method_text": STR, "history_days": INT,
                                "days": arr(obj({"day": STR, "cost_usd": BAND})),
                                "month": obj({"period": STR, "spent_usd": STR, "projected_usd": BAND,
                                              "projection": PROJECTION})}))
BUDGET = obj({"name": STR, "period": STR, "period_label": STR, "utc_offset": STR, "now": STR, "unit": STR,
              "limit": STR, "spent": STR, "calls": INT, "calls_unpriced": INT, "calls_upper_bound": INT,
              "exactness": {"enum": ["exact", "upper_bound", "incomplete"]}, "percent": STR, "state": STR,
              "severity": STR, "thresholds": arr(INT), "threshold_passed": NINT, "next_threshold": NINT,
              "status": STR, "daily_average": STR, "projection": PROJECTION, "crossed_at": NSTR,
              "crossing_day": NSTR,
              "chart": obj({"step": STR, "actual": arr(arr(STR)), "projection": arr(arr(STR))})})
BUDGETS = Endpoint("/budgets", "/api/v1/budgets", "budgets", "Every visible budget's spend in its current period",
                   (), filters=False, schema=obj({"budgets": arr(BUDGET)}))
ONE_BUDGET = Endpoint("/budgets/<name>", "/api/v1/budgets/{name}", "budget", "One budget (404 outside the scope)",
                      (Param("name", "the budget name", location="path"),), filters=False, schema=BUDGET,
                      statuses=(400, 401, 403, 404, 503, 504))
ITEM = obj({"kind": STR, "saving_usd": STR, "saving_pct": STR, "query": STR, "assumption": STR})
FIX = obj({"kind": STR, "provider": STR, "model": STR, "calls": INT, "fix": STR, "query": STR})
RECOMMENDATIONS = Endpoint(
    "/recommendations", "/api/v1/recommendations", "recommendations",
    "Savings advice over the last 30 days: cheaper models, prompt caching, unpriced models",
    (Param("group", "advise per feature or per service", enum=("feature", "service")),
     Param("cache_target", "cache-hit ratio to estimate against (0..1)", pattern=r"0(\.[0-9]{1,4})?|1(\.0{1,4})?",
           default="0.5", max_length=6)),
    schema=obj({"from": STR, "to": STR, "cheaper_models": arr(ITEM), "prompt_cache": arr(ITEM),
                "unpriced_models": arr(FIX)}))
LATENCY = Endpoint(
    "/latency", "/api/v1/latency", "latency",
    "Call duration per group over the window (average and percentiles, from every raw call)",
    RANGE_PARAMS + (Param("group_by", "fields to group by (repeatable, at most 3)", kind="array"),),
    schema=obj({"from": STR, "to": STR, "group_by": arr(STR),
                "groups": arr(obj({"key": {"type": "object"}, "calls": INT, "avg_s": NUM, "p50_s": NUM,
                                   "p95_s": NUM, "p99_s": NUM}))}))


@route(bp, LATENCY)
def latency_view() -> Response:
    ctx = context(LATENCY)
    window = ctx.window()
    group_by = ctx.group_by()
    ctx.require_raw(window.start_ns)
    rows = ctx.svc.reader.latency(window.start_ns, window.end_ns, ctx.filters, group_by)
    return jsonify({"from": iso(window.start_ns), "to": iso(window.end_ns), "group_by": group_by,
                    "groups": [{"key": dict(zip(group_by, r.key)), "calls": r.calls, "avg_s": round(r.avg_s, 6),
                                "p50_s": r.p50_s, "p95_s": r.p95_s, "p99_s": r.p99_s} for r in rows]})


@route(bp, FORECAST)
def forecast_view() -> Response:
    ctx = context(FORECAST)
    horizon = int(ctx.args.text("horizon", "30d")[:-1])
    return jsonify(forecast_payload(ctx.svc.reader, ctx.filters, ctx.now_ns, ctx.svc.offset, horizon))


@route(bp, BUDGETS)
def budgets_view() -> Response:
    ctx = context(BUDGETS)
    return jsonify({"budgets": budgets_payload(ctx.svc.config, ctx.svc.reader, ctx.now_ns, ctx.principal.scope)})


@route(bp, ONE_BUDGET)
def budget_view(name: str) -> Response:
    ctx = context(ONE_BUDGET)
    budget = next((b for b in ctx.svc.config.budgets if b.name == name), None)
    if budget is None:
        raise NotFound(f"budget {name[:64]!r} not found", "name")
    return jsonify(budget_payload(ctx.svc.reader, budget, ctx.now_ns, ctx.principal.scope))


@route(bp, RECOMMENDATIONS)
def recommendations_view() -> Response:
    ctx = context(RECOMMENDATIONS)
    end = ctx.now_ns
    start = end - days_ns(30)
    fields = ctx.svc.reader.fields()
    group = ctx.args.text("group") or ("feature" if "feature" in fields else "service")
    if group not in fields:
        raise ParamError(f"group: {group!r} is not a field of this ledger; allowed: service"
                         + (", feature" if "feature" in fields else ""), "group")
    reader, book = ctx.svc.reader, ctx.svc.book
    target = Decimal(ctx.args.text("cache_target", "0.5"))
    advice = ctx.svc.config.reports.advice
    return jsonify({
        "from": iso(start), "to": iso(end), "group": group,
        "cheaper_models": cheaper_models(reader, book, ctx.filters, start, end, group, advice),
        "prompt_cache": cache_savings(reader, book, ctx.filters, start, end, target, advice),
        "unpriced_models": unpriced_models(reader, ctx.filters, start, end),
    })
