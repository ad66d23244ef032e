"""Usage: the usage-portal views. Requests by model (zero-request priced models included), token
share and volume by model, model comparison, response time by operation and model, top customers /
users / organizations / services, busiest hours x days of week, usage by operation.
"""

from __future__ import annotations

from typing import Any

from genai_meter.dashboards.common import Ctx, build, target
from genai_meter.dashboards.layout import Layout
from genai_meter.dashboards.overview import stat
from genai_meter.dashboards.panels import (
    PERCENT,
    REQUESTS,
    SECONDS,
    TOKENS,
    BarGaugePanel,
    PieChartPanel,
    TablePanel,
    TimeSeriesPanel,
)
from genai_meter.dashboards.tiers import bucketed
from genai_meter.promql.links import REQUESTS_BY_MODEL, TOP_USAGE, USAGE_OVER_TIME, USAGE_UID
from genai_meter.promql.names import FAILED, INPUT_SIDE, OK, OUTPUT_SIDE

UID = USAGE_UID
TITLE = "GenAI Meter / Usage"
TOP = 20
# Who a top table ranks, in this order, when the label exists: dimensions, then the service.
TOP_LABELS = (("customer", "customers"), ("user", "users"), ("organization", "organizations"),
              ("api_key", "API keys"), ("service_name", "services"))
WEEKDAYS = ("7 Sun", "1 Mon", "2 Tue", "3 Wed", "4 Thu", "5 Fri", "6 Sat")  # PromQL day_of_week() 0..6
QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
INF = 'le="+Inf"'  # the count of a histogram


def _models_panels(lay: Layout, ctx: Ctx) -> None:
    r, n = ctx.r, ctx.n
    req, tok = r.requests_increase15m, r.tokens_increase15m
    lay.row("Models over the selected range")
    seen = f"sum by (provider, model) (sum_over_time({req}{ctx.attribution()}[$__range]))"
    pm = ctx.filters(("provider", "model"))
    zeros = (f"(\n    max by (provider, model) ({r.priced_models}{pm})\n"
             f"    or max by (provider, model) ({n.price}{pm}) * 0\n  )\n"
             f"  and on (provider) group by (provider) (\n    {seen}\n  )")
    lay.add(BarGaugePanel(
        title="Requests by model", unit=REQUESTS, noValue="no requests in range",
        description="Calls per model in the range, and every priced model (price overrides, the price catalog, "
                    "and models the processor has priced) of the providers called, at 0 when nobody called it.",
        targets=[target(f"sort_desc(\n  {seen}\n  or\n  {zeros}\n)", legend="{{model}} ({{provider}})",
                        instant=True)]), 8, 12, REQUESTS_BY_MODEL)
    lay.add(PieChartPanel(
        title="Tokens by model (share)", unit=TOKENS,
        description="Each model's share of all tokens (input, cache, output, reasoning) in the range.",
        targets=[target(ctx.total(tok, by="model"), legend="{{model}}", instant=True)]), 8, 12)
    lay.add(BarGaugePanel(
        title="Tokens by model (volume)", unit=TOKENS,
        description="Input tokens (uncached, cache reads and writes) and output tokens (with reasoning) per model.",
        targets=[target(f"sort_desc({ctx.total(tok, INPUT_SIDE, by='model')})", "A", "{{model}} input",
                        instant=True),
                 target(f"sort_desc({ctx.total(tok, OUTPUT_SIDE, by='model')})", "B", "{{model}} output",
                        instant=True)]), 8, 12)


def _latency(ctx: Ctx, by: str, q: float | None) -> str:
    """Average (q None) or a quantile of request duration by `by` over the range, from the rollups."""
    r, hist = ctx.r, ctx.histogram()
    if q is None:
        return (f"sum by ({by}) (sum_over_time({r.duration_sum_increase15m}{hist}[$__range]))\n/\n"
                f"sum by ({by}) (sum_over_time({r.duration_bucket_increase15m}{ctx.histogram(INF)}"
                f"[$__range]))")
    return (f"histogram_quantile({q}, sum by ({by}, le) "
            f"(sum_over_time({r.duration_bucket_increase15m}{hist}[$__range])))")


def _live_average(ctx: Ctx, by: str) -> str:
    r = ctx.r
    return (f"sum by ({by}) ({r.duration_sum_rate5m}{ctx.histogram()})\n/\n"
            f"sum by ({by}) ({r.duration_bucket_rate5m}{ctx.histogram(INF)})")


def _comparison_panels(lay: Layout, ctx: Ctx) -> None:
    r = ctx.r
    req, tok, cost = r.requests_increase15m, r.tokens_increase15m, r.cost_increase15m
    lay.row("Success rate and model comparison")
    total = ctx.total(req, by="model")
    all_total = ctx.total(req)
    lay.add(stat("Success rate", f"({ctx.total(req, OK)} or {all_total} * 0)\n/\n{all_total}", PERCENT,
                 "Calls that completed without error, as a share of all calls in the range.", no_value=None), 4, 8)
    rate_all = f"sum by (model) ({r.requests_rate5m}{ctx.service_model()})"
    rate_ok = f"sum by (model) ({r.requests_rate5m}{ctx.service_model(OK)})"
    lay.add(TimeSeriesPanel(
        title="Success rate by model", unit=PERCENT, min=0,
        description="Share of calls that succeeded over the last 5 minutes at each point, by model.",
        targets=[target(f"({rate_ok} or {rate_all} * 0)\n/\n{rate_all}", legend="{{model}}")]), 8, 8)
    money = ctx.money_unit
    lay.add(TablePanel(
        title="Model comparison", sortColumn="Requests",
        description="Per model over the range: calls, success and error rate, cost per 1,000 tokens, average and "
                    "p95 latency, cost. Latency ignores the dimension filters (histograms carry no dimensions).",
        columns={"A": ("Requests", REQUESTS), "B": ("Success rate", PERCENT), "C": ("Error rate", PERCENT),
                 "D": ("Cost per 1k tokens", money), "E": ("Avg latency", SECONDS), "F": ("p95 latency", SECONDS),
                 "G": ("Cost", money)},
        targets=[target(total, "A", instant=True, table=True),
                 target(f"({ctx.total(req, OK, by='model')} or {total} * 0)\n/\n{total}", "B", instant=True,
                        table=True),
                 target(f"({ctx.total(req, FAILED, by='model')} or {total} * 0)\n/\n{total}", "C", instant=True,
                        table=True),
                 target(ctx.money(f"{ctx.total(cost, by='model')}\n/\n{ctx.total(tok, by='model')} * 1000"), "D",
                        instant=True, table=True),
                 target(_latency(ctx, "model", None), "E", instant=True, table=True),
                 target(_latency(ctx, "model", 0.95), "F", instant=True, table=True),
                 target(ctx.money(ctx.total(cost, by="model")), "G", instant=True, table=True)]), 12, 8)


def _response_time_panels(lay: Layout, ctx: Ctx) -> None:
    lay.row("Response time by operation and by model")
    for by, name in (("operation", "operation"), ("model", "model")):
        lay.add(TimeSeriesPanel(
            title=f"Average response time by {name}", unit=SECONDS, min=0,
            description=f"Mean request duration over the last 5 minutes at each point, by {name} "
                        "(chat, text completion, embeddings, ...).",
            targets=[target(_live_average(ctx, by), legend=f"{{{{{by}}}}}")]), 12, 8)
    for by, name in (("operation", "operation"), ("model", "model")):
        columns = {"A": ("Average", SECONDS)}
        targets = [target(_latency(ctx, by, None), "A", instant=True, table=True)]
        for ref, (q, label) in zip("BCD", QUANTILES, strict=True):
            columns[ref] = (label, SECONDS)
            targets.append(target(_latency(ctx, by, q), ref, instant=True, table=True))
        lay.add(TablePanel(
            title=f"Response time by {name} over the range", sortColumn="p95", columns=columns, targets=targets,
            description=f"Average, p50, p95 and p99 request duration per {name} over the whole range."), 12, 7)


def _top_panels(lay: Layout, ctx: Ctx) -> None:
    r = ctx.r
    req, tok, cost = r.requests_increase15m, r.tokens_increase15m, r.cost_increase15m
    money = ctx.money_unit
    labels = [(label, words) for label, words in TOP_LABELS if label in ctx.dims or label == "service_name"]
    lay.row("Top usage over the selected range")
    for label, words in labels:
        top = f"topk({TOP}, {ctx.total(cost, by=label)})"

        def ranked(expr: str, lab: str = label, top_expr: str = top) -> str:
            return f"{expr}\n  and on ({lab}) {top_expr}"

        lay.add(TablePanel(
            title=f"Top {words}", sortColumn="Cost", noValue=f"no usage by {words} in range",
            description=f"The {TOP} {words} with the highest cost in the range: calls, input, output and total "
                        "tokens, cost and cost per request.",
            columns={"A": ("Requests", REQUESTS), "B": ("Input tokens", TOKENS), "C": ("Output tokens", TOKENS),
                     "D": ("Total tokens", TOKENS), "E": ("Cost", money), "F": ("Cost per request", money)},
            targets=[target(ranked(ctx.total(req, by=label)), "A", instant=True, table=True),
                     target(ranked(ctx.total(tok, INPUT_SIDE, by=label)), "B", instant=True, table=True),
                     target(ranked(ctx.total(tok, OUTPUT_SIDE, by=label)), "C", instant=True, table=True),
                     target(ranked(ctx.total(tok, by=label)), "D", instant=True, table=True),
                     target(ctx.money(top), "E", instant=True, table=True),
                     target(ctx.money(ranked(f"{ctx.total(cost, by=label)}\n/\n{ctx.total(req, by=label)}")), "F",
                            instant=True, table=True)]),
            12, 9, TOP_USAGE if label == "customer" else None)


def busiest_hours(ctx: Ctx) -> str:
    """Requests in the range by (weekday, hour) of day, UTC: each hour of the range is summed from the
    rollups and labelled with its hour and weekday (count_values turns the numbers into labels)."""
    at = "vector(time() - 1800)"  # the middle of the hour that ends at each 1-hour subquery step
    hourly = (f"sum(sum_over_time({ctx.r.requests_increase15m}{ctx.attribution()}[1h]))\n"
              f'  * on () group_left (hour) count_values("hour", hour({at}))\n'
              f'  * on () group_left (weekday) count_values("weekday", day_of_week({at}))')
    expr = f"sum by (weekday, hour) (\n  sum_over_time((\n  {hourly}\n  )[$__range:1h])\n)"
    expr = f'label_replace({expr}, "hour", "0$1", "hour", "([0-9])")'
    for number, name in enumerate(WEEKDAYS):
        expr = f'label_replace({expr}, "weekday", "{name}", "weekday", "{number}")'
    return expr


def _pattern_panels(lay: Layout, ctx: Ctx) -> None:
    r, n = ctx.r, ctx.n
    lay.row("When and how: busiest hours, operations, tools")
    lay.add(TablePanel(
        title="Busiest hours of day by day of week", columns={"A": ("Requests", REQUESTS)},
        matrix=("hour", "weekday", WEEKDAYS[1:] + WEEKDAYS[:1]),
        description="Calls in the range by hour of day (rows, UTC) and day of week (columns), summed over every "
                    "week in the range.",
        targets=[target(busiest_hours(ctx), instant=True, table=True)]), 12, 14)
    for rule, name, unit in ((r.requests_increase15m, "Requests", REQUESTS), (r.tokens_increase15m, "Tokens", TOKENS)):
        lay.add(BarGaugePanel(
            title=f"{name} by operation", unit=unit,
            description=f"{name} in the range by operation (chat, text completion, embeddings, ...).",
            targets=[target(f"sort_desc({ctx.total(rule, by='operation')})", legend="{{operation}}",
                            instant=True)]), 6, 7)
    lay.add(TimeSeriesPanel(
        title="Requests over time by operation", unit=REQUESTS, bars=True, stacked=True,
        description="Calls per bucket by operation: 1 minute for ranges up to 6 hours (raw counters), 1 hour up "
                    "to 8 days, 1 day beyond.",
        targets=bucketed(ctx, n.requests, r.requests_increase15m, by="operation", legend="{{operation}}")), 12, 7,
        USAGE_OVER_TIME)
    for title, status in (("Tool calls by tool name", ""), ("Failed tool calls by tool name", 'status="error"')):
        tools = f"{n.tool_calls}{ctx.filters(('service_name', 'environment'), status)}"
        lay.add(BarGaugePanel(
            title=title, unit=REQUESTS,
            description="Tool executions in the range (spans such as execute_tool, which carry no tokens and no "
                        "cost), by tool name, from the raw counter (current to the last scrape).",
            targets=[target(f"sort_desc(sum by (tool_name) (increase({tools}[$__range])))",
                            legend="{{tool_name}}", instant=True)]), 12, 7)


def build_usage(ctx: Ctx) -> dict[str, Any]:
    lay = Layout()
    _models_panels(lay, ctx)
    _comparison_panels(lay, ctx)
    _response_time_panels(lay, ctx)
    _top_panels(lay, ctx)
    _pattern_panels(lay, ctx)
    return build(uid=UID, title=TITLE, layout=lay, variables=ctx.variables(), time_from="24h",
                 description="The usage-portal views: requests and tokens by model, model comparison, response "
                             "time, top customers, users, organizations and services, busiest hours, operations.")
