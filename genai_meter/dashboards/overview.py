"""Overview: how much, how often, how well, and where the month stands against its budgets."""

from __future__ import annotations

from typing import Any

from genai_meter import contract as c
from genai_meter.dashboards.common import Ctx, build, target
from genai_meter.dashboards.layout import Layout
from genai_meter.dashboards.panels import (
    PERCENT,
    REQ_PER_SEC,
    REQUESTS,
    TOKENS,
    BarGaugePanel,
    StatPanel,
    TextPanel,
    TimeSeriesPanel,
    steps,
)
from genai_meter.dashboards.tiers import bucketed, live_total
from genai_meter.promql.links import LABEL_OVERFLOW, METER_SPANS, OVERVIEW_UID, UNMETERED_CALLS
from genai_meter.promql.names import FAILED, INPUT_SIDE, OK, OUTPUT_SIDE

UID = OVERVIEW_UID
# The live stats' own fixed ranges: the last hour, and today so far (UTC midnight to now).
LIVE_RANGES = (("1h", "last hour"), ("now/d", "today"))
TITLE = "GenAI Meter / Overview"
ERROR_COLORS = steps(("green", None), ("orange", 0.01), ("red", 0.05))


def budget_colors(thresholds: list[int] | None = None) -> dict[str, Any]:
    t = sorted(thresholds or [75, 90, 100])
    colors = ["yellow", "orange", "red", "dark-red"]
    return steps(("green", None), *((colors[min(i, 3)], x / 100) for i, x in enumerate(t)))


def stat(title: str, expr: str, unit: str, description: str, colors: dict[str, Any] | None = None,
         no_value: str | None = "0", relative_time: str | None = None) -> StatPanel:
    kwargs: dict[str, Any] = {}
    if colors is not None:
        kwargs["colors"] = colors
    return StatPanel(title=title, description=description, unit=unit, noValue=no_value,
                     targets=[target(expr, instant=True)], relativeTime=relative_time, **kwargs)


def live_row(lay: Layout, ctx: Ctx) -> None:
    """Requests, tokens and cost of the last hour and of today, from the raw counters."""
    n = ctx.n
    lay.row("Live: last hour and today (raw counters, current to the last scrape)")
    live = "From the raw counters over this panel's own fixed range: it moves with the next scrape after a " \
           "call. Approximate (increase() extrapolates); exact totals are the report page's job."
    for counter, name, unit, money in ((n.requests, "Requests", REQUESTS, False),
                                       (n.tokens, "Tokens", TOKENS, False), (n.cost, "Cost", ctx.money_unit, True)):
        for span, words in LIVE_RANGES:
            expr = live_total(ctx, counter)
            lay.add(stat(f"{name} {words}", ctx.money(expr) if money else expr, unit, f"{name}, {words}. {live}",
                         relative_time=span), 4, 4)


def build_overview(ctx: Ctx) -> dict[str, Any]:
    r, n = ctx.r, ctx.n
    req, tok, cost = r.requests_increase15m, r.tokens_increase15m, r.cost_increase15m
    total_requests = ctx.total(req)
    total_tokens = ctx.total(tok)
    total_cost = ctx.total(cost)
    money = ctx.money_unit
    lay = Layout()
    live_row(lay, ctx)

    lay.row("Requests over the selected range (as of the last rollup, <= 15 min)")
    lay.add(stat("Requests", total_requests, REQUESTS, "LLM calls in the selected range."), 4, 4)
    lay.add(stat("Successful", ctx.total(req, OK), REQUESTS,
                 "Calls that completed without error."), 4, 4)
    failed = ctx.total(req, FAILED)
    lay.add(stat("Failed", failed, REQUESTS,
                 "Calls whose span ended with an error status.", steps(("green", None), ("red", 1))), 4, 4)
    lay.add(stat("Error rate", f"({failed} or vector(0))\n/\n{total_requests}",
                 PERCENT, "Failed calls as a share of all calls in the range.", ERROR_COLORS), 4, 4)
    lay.add(stat("Request rate (now)", f"sum(rate({n.requests}{ctx.attribution()}[5m]))", REQ_PER_SEC,
                 "Calls per second over the last 5 minutes, whatever the range."), 4, 4)
    lay.add(stat("Tokens per request", f"{total_tokens}\n/\n{total_requests}", TOKENS,
                 "Average tokens (input + output, all classes) per call."), 4, 4)

    lay.row("Tokens and cost over the selected range (as of the last rollup, <= 15 min)")
    lay.add(stat("Input tokens", ctx.total(tok, INPUT_SIDE), TOKENS,
                 "Input tokens as users read them: uncached + cache reads + cache writes."), 4, 4)
    lay.add(stat("Output tokens", ctx.total(tok, OUTPUT_SIDE), TOKENS,
                 "Output tokens including reasoning tokens."), 4, 4)
    lay.add(stat("Total tokens", total_tokens, TOKENS, "All five token classes."), 4, 4)
    lay.add(stat("Total cost", ctx.money(total_cost), money,
                 f"Cost of all calls in the range, in {ctx.config.pricing.currency.code}."), 4, 4)
    lay.add(stat("Cost per request", ctx.money(f"{total_cost}\n/\n{total_requests}"), money,
                 "Average cost of one call."), 4, 4)
    lay.add(stat("Cost rate (now, per hour)", ctx.money(f"sum(rate({n.cost}{ctx.attribution()}[5m])) * 3600"),
                 money, "Spend per hour at the rate of the last 5 minutes."), 4, 4)

    lay.row("This month against budget")
    monthly = [b for b in ctx.config.budgets if b.period == "month"]
    monthly_usd = [b for b in monthly if b.unit == "usd"]
    if monthly:
        names = "|".join(b.name for b in monthly)
        lay.add(BarGaugePanel(
            title="Month-to-date use of budget", unit=PERCENT, max=1, colors=budget_colors(),
            description="Share of each monthly budget's limit spent since the 1st (budgets have their own "
                        "scope; the filters above do not apply).",
            targets=[target(f'{r.budget_ratio}{{budget=~"{names}"}}', legend="{{budget}}", instant=True)]), 8, 6)
    if monthly_usd:
        names = "|".join(b.name for b in monthly_usd)
        lay.add(BarGaugePanel(
            title="Month-to-date spend", unit=money,
            description="Spend since the 1st of the month of each monthly money budget, from the processor's "
                        "exact budget counters.",
            targets=[target(ctx.money(f'{r.budget_spend}{{budget=~"{names}"}}'), legend="{{budget}}",
                            instant=True)]), 8, 6)
        lay.add(BarGaugePanel(
            title="Projected month-end spend", unit=money,
            description="Spend so far plus the current rate (last day) times the time left in the month.",
            targets=[target(ctx.money(
                f'{r.budget_projected}{{budget=~"{names}"}}\n  * on (budget) group_left ()\n'
                f'max by (budget) ({n.budget_limit}{{unit="usd"}})'), legend="{{budget}}", instant=True)]), 8, 6)
    if not monthly:
        lay.add(TextPanel(title="No monthly budget",
                          content="No budget with `period: month` is configured. Add one under `budgets:` in "
                                  "genai-meter.yaml and run `genai-meter generate` to see month-to-date spend "
                                  "against it here."), 24, 3)

    lay.row("Over time (1-minute buckets up to 6 hours, hourly up to 8 days, daily beyond)")
    buckets = "Bucket: 1 minute for ranges up to 6 hours (raw counters), 1 hour up to 8 days, 1 day beyond."
    lay.add(TimeSeriesPanel(
        title="Requests", unit=REQUESTS, bars=True, stacked=True,
        description=f"Calls per bucket by status. {buckets}",
        targets=bucketed(ctx, n.requests, req, by="status", legend="{{status}}")), 8, 8)
    lay.add(TimeSeriesPanel(
        title="Tokens", unit=TOKENS, bars=True, stacked=True,
        description=f"Tokens per bucket by class. {buckets}",
        targets=bucketed(ctx, n.tokens, tok, by="token_type", legend="{{token_type}}")), 8, 8)
    lay.add(TimeSeriesPanel(
        title="Cost", unit=money, bars=True, stacked=True,
        description=f"Cost per bucket by provider. {buckets}",
        targets=bucketed(ctx, n.cost, cost, by="provider", legend="{{provider}}", money=True)), 8, 8)

    lay.row("Meter health")
    lay.add(TimeSeriesPanel(
        title="Spans received, counted and skipped", unit="ops",
        description="What the processor does with the spans it receives (per second).",
        targets=[target(f"sum(rate({c.SELF_SPANS_RECEIVED}[$__rate_interval]))", "A", "received"),
                 target(f"sum(rate({c.SELF_SPANS_COUNTED}[$__rate_interval]))", "B", "counted"),
                 target(f"sum by (reason) (rate({c.SELF_SPANS_SKIPPED}[$__rate_interval]))", "C",
                        "skipped: {{reason}}")]), 8, 6, METER_SPANS)
    lay.add(stat("Unmetered calls",
                 f"sum(increase({n.unmetered}{ctx.service_provider_model()}[$__range])) or vector(0)", REQUESTS,
                 "Calls without token counts, or from sources that hide cached tokens (cost is an upper bound).",
                 steps(("green", None), ("orange", 1))), 4, 6, UNMETERED_CALLS)
    lay.add(stat("Unpriced calls",
                 f"sum(increase({n.unpriced}{ctx.service_provider_model()}[$__range])) or vector(0)", REQUESTS,
                 "Calls of models with no known price: their cost is missing. See Cost analysis.",
                 steps(("green", None), ("red", 1))), 4, 6)
    lay.add(stat("Sampled spans",
                 f"sum(increase({c.SELF_SPANS_SAMPLED}[$__range])) or vector(0)", REQUESTS,
                 "Spans of probability-sampled traces: calls of the unsampled ones never arrive, so figures "
                 "undercount.", steps(("green", None), ("orange", 1))), 4, 6)
    lay.add(stat("Label overflow",
                 f"sum(increase({c.SELF_LABEL_OVERFLOW}[$__range])) or vector(0)", REQUESTS,
                 "Label values folded into __overflow__ because a dimension reached its cap.",
                 steps(("green", None), ("orange", 1))), 4, 6, LABEL_OVERFLOW)

    return build(uid=UID, title=TITLE, layout=lay, variables=ctx.variables(), time_from="24h",
                 description="LLM requests, tokens and cost at a glance, and this month against its budgets.")
