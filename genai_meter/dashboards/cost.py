"""Cost analysis: where the money goes, who spends it, how it changed, what caching saves."""

from __future__ import annotations

from typing import Any

from genai_meter.dashboards.common import Ctx, build, target
from genai_meter.dashboards.layout import Layout
from genai_meter.dashboards.overview import stat
from genai_meter.dashboards.panels import PERCENT, REQUESTS, BarGaugePanel, TablePanel, TimeSeriesPanel, steps
from genai_meter.dashboards.tiers import bucketed
from genai_meter.promql.links import COST_BY_SERVICE, COST_UID, UNPRICED_MODELS
from genai_meter.promql.names import INPUT_SIDE, OUTPUT_SIDE

UID = COST_UID
TITLE = "GenAI Meter / Cost analysis"
TOP = 15
BREAKDOWN_TITLES = {"model": "model", "provider": "provider", "service_name": "service"}
CHANGE_COLORS = steps(("green", None), ("orange", 0.1), ("red", 0.5))
CACHE_READ = 'token_type="cache_read"'


def build_cost(ctx: Ctx) -> dict[str, Any]:
    r, n = ctx.r, ctx.n
    tok, cost, req = r.tokens_increase15m, r.cost_increase15m, r.requests_increase15m
    money = ctx.money_unit
    total_cost = ctx.total(cost)
    lay = Layout()

    lay.row("Where the money goes")
    labels = ["model", "provider", "service_name", *ctx.dims]
    for label in labels:
        name = BREAKDOWN_TITLES.get(label, label.replace("_", " "))
        lay.add(BarGaugePanel(
            title=f"Cost by {name}", unit=money, noValue="no cost in range",
            description=f"The {TOP} {name}s with the highest cost in the range.",
            targets=[target(f"sort_desc(topk({TOP}, {ctx.money(ctx.total(cost, by=label))}))",
                            legend=f"{{{{{label}}}}}", instant=True)]), 8, 8,
            COST_BY_SERVICE if label == "service_name" else None)
    lay.add(TimeSeriesPanel(
        title="Cost over time by model", unit=money, bars=True, stacked=True,
        description="Cost per bucket, stacked by model: 1 minute for ranges up to 6 hours (raw counters), "
                    "1 hour up to 8 days, 1 day beyond.",
        targets=bucketed(ctx, n.cost, cost, by="model", legend="{{model}}", money=True)), 24, 8)

    lay.row("This period against the previous one")
    previous = ctx.total(cost, offset="$__range")
    lay.add(stat("Cost this period", ctx.money(total_cost), money, "Cost in the selected range."), 6, 4)
    lay.add(stat("Cost previous period", ctx.money(previous), money,
                 "Cost in the range of the same length just before it."), 6, 4)
    lay.add(stat("Change", f"({total_cost} - {previous})\n/\n{previous}", PERCENT,
                 "Relative change of cost against the previous period.", CHANGE_COLORS, no_value=None), 6, 4)
    lay.add(stat("Requests change",
                 f"({ctx.total(req)} - {ctx.total(req, offset='$__range')})\n/\n{ctx.total(req, offset='$__range')}",
                 PERCENT, "Relative change of the number of calls against the previous period.", no_value=None),
            6, 4)
    lay.add(TimeSeriesPanel(
        title="Cost per interval: this period and the previous one", unit=money, interval="15m",
        description="The previous period is shifted onto this one, so the two lines compare like for like.",
        targets=[target(ctx.money(ctx.total(cost, window="$__interval")), "A", "this period"),
                 target(ctx.money(ctx.total(cost, window="$__interval", offset="$__range")), "B",
                        "previous period")]), 12, 8)
    by_model_now = ctx.total(cost, by="model")
    by_model_before = ctx.total(cost, by="model", offset="$__range")
    lay.add(TablePanel(
        title="Cost by model: this period and the previous one", sortColumn="This period",
        description="Per model: cost now, cost in the previous period, and the relative change.",
        columns={"A": ("This period", money), "B": ("Previous period", money), "C": ("Change", PERCENT)},
        targets=[target(ctx.money(by_model_now), "A", instant=True, table=True),
                 target(ctx.money(by_model_before), "B", instant=True, table=True),
                 target(f"({by_model_now} - {by_model_before})\n/\n{by_model_before}", "C", instant=True,
                        table=True)]), 12, 8)

    lay.row("Caching and token mix")
    cache_read = ctx.total(tok, CACHE_READ)
    input_side = ctx.total(tok, INPUT_SIDE)
    at_input_price = (
        f"sum(\n  sum by (provider, model) (sum_over_time({tok}{ctx.attribution(CACHE_READ)}"
        f"[$__range]))\n  * on (provider, model) group_left ()\n"
        f'  max by (provider, model) ({n.price}{{token_type="input"}})\n) / 1e6')
    cache_cost = ctx.total(cost, 'cost_type="cache_read"')
    lay.add(stat("Cache hit ratio", f"{cache_read}\n/\n{input_side}", PERCENT,
                 "Input tokens served from the prompt cache, as a share of all input tokens."), 6, 4)
    lay.add(stat("Cached tokens at input price", ctx.money(at_input_price), money,
                 "What the cache-read tokens would have cost at the model's (current) uncached input price."),
            6, 4)
    lay.add(stat("Cache savings", ctx.money(f"{at_input_price}\n-\n({cache_cost} or vector(0))"), money,
                 "Cached tokens at the input price minus what the cache reads actually cost."), 6, 4)
    output_side = ctx.total(tok, OUTPUT_SIDE)
    lay.add(stat("Output-token share", f"{output_side}\n/\n{ctx.total(tok)}", PERCENT,
                 "Output (and reasoning) tokens as a share of all tokens; output is priced several times input."),
            6, 4)
    lay.add(BarGaugePanel(
        title="Cost by class", unit=money,
        description="Cost by class: input, cache reads and writes, output, reasoning, per-request fees, and every "
                    "billed-unit class the metrics carry (each cost_type value is its own bar).",
        targets=[target(f"sort_desc({ctx.money(ctx.total(cost, by='cost_type'))})", legend="{{cost_type}}",
                        instant=True)]), 8, 8)
    lay.add(BarGaugePanel(
        title="Cache hit ratio by model", unit=PERCENT, max=1,
        description="Share of each model's input tokens served from the cache.",
        targets=[target(f"sort_desc(\n{ctx.total(tok, CACHE_READ, by='model')}\n/\n"
                        f"{ctx.total(tok, INPUT_SIDE, by='model')}\n)",
                        legend="{{model}}", instant=True)]), 8, 8)
    lay.add(BarGaugePanel(
        title="Output-token share by model", unit=PERCENT, max=1,
        description="Share of each model's tokens that are output or reasoning.",
        targets=[target(f"sort_desc(\n{ctx.total(tok, OUTPUT_SIDE, by='model')}\n/\n"
                        f"{ctx.total(tok, by='model')}\n)", legend="{{model}}", instant=True)]), 8, 8)

    lay.row("Unpriced models")
    unpriced = f"{n.unpriced}{ctx.service_provider_model()}"
    lay.add(TablePanel(
        title="Models without a price", sortColumn="Unpriced calls", noValue="every model is priced",
        description="Calls of models with no known price in the range: their cost is missing from every "
                    "figure. Add the models to the price overrides.",
        columns={"A": ("Unpriced calls", REQUESTS)},
        targets=[target(f"sum by (service_name, provider, model) (\n"
                        f"  (max_over_time({unpriced}[$__range]) unless {unpriced} offset $__range)\n"
                        f"  or increase({unpriced}[$__range])\n) > 0", "A", instant=True, table=True)]), 24, 7,
        UNPRICED_MODELS)

    return build(uid=UID, title=TITLE, layout=lay, variables=ctx.variables(), time_from="30d",
                 description="LLM cost by model, provider, service and attribution dimension; "
                             "period comparison; cache savings; unpriced models.")
