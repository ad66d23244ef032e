"""Budgets & forecast: each budget's spend, limit, share used, time to exhaustion and projection.

Budgets have their own scope (label matchers in the config, applied by the processor), so the
label filters only apply to the "selected scope" row. Every budget in the config gets its own row
with units that fit it (money or tokens).
"""

from __future__ import annotations

from typing import Any

from genai_meter.config import BudgetConfig
from genai_meter.dashboards.common import Ctx, LabelVariable, build, target
from genai_meter.dashboards.layout import Layout
from genai_meter.dashboards.overview import budget_colors, stat
from genai_meter.dashboards.panels import (
    PERCENT,
    SECONDS,
    TOKENS,
    GaugePanel,
    StatPanel,
    TablePanel,
    TextPanel,
    TimeSeriesPanel,
)
from genai_meter.promql.links import BUDGETS_TABLE, BUDGETS_UID
from genai_meter.promql.text import quote

UID = BUDGETS_UID
TITLE = "GenAI Meter / Budgets & forecast"
RANGE_LOW, RANGE_HIGH = 0.1, 0.9  # quantiles of the hourly use rate over 7 days: the projection range
ALL = '{budget=~"$budget"}'


def _scope(budget: BudgetConfig) -> str:
    if not budget.match:
        return "everything"
    return ", ".join(f"{k} ~ {v[1:]}" if v.startswith("~") else f"{k} = {v}" for k, v in sorted(budget.match.items()))


def _limit_text(budget: BudgetConfig) -> str:
    if budget.unit == "tokens":
        return f"{budget.limit_tokens:,} tokens"
    return f"{budget.limit} USD"


class _Queries:
    """Budget PromQL over the recording rules, for one budget selector (`{budget=...}`)."""

    def __init__(self, ctx: Ctx) -> None:
        self.r, self.n = ctx.r, ctx.n

    def hourly_rate_quantile(self, q: float, sel: str) -> str:
        """A quantile of the hourly use rate (share of the limit per second) over the last 7 days;
        the current rate for a budget younger than its first full hour."""
        n, limit = self.n, self.n.budget_limit
        inner = (f"sum by (budget) (rate({n.budget_spend}{sel}[1h]))\n"
                 f'    / on (budget) max by (budget) ({limit}{{unit="usd"}})\n  or\n'
                 f"  sum by (budget) (rate({n.budget_tokens}{sel}[1h]))\n"
                 f'    / on (budget) max by (budget) ({limit}{{unit="tokens"}})')
        return f"(\n  quantile_over_time({q}, (\n  {inner}\n)[7d:1h])\n  or {self.r.budget_ratio_rate}{sel}\n)"

    def projected(self, q: float, sel: str) -> str:
        """Share of the limit at period end if the rate were the q-quantile hourly rate."""
        r = self.r
        return (f"{r.budget_ratio}{sel}\n+ on (budget) group_left ()\n"
                f"({self.hourly_rate_quantile(q, sel)}\n * on (budget) {r.budget_seconds_left})")

    def exhaustion(self, sel: str) -> str:
        """Seconds until the limit at the current rate (0 once exceeded; none without spend)."""
        r = self.r
        return (f"clamp_min(\n  (1 - {r.budget_ratio}{sel})\n  / on (budget) group_left ()\n"
                f"  ({r.budget_ratio_rate} > 0),\n  0\n)")

    def in_limit_units(self, ratio_expr: str, sel: str) -> str:
        return f"{ratio_expr}\n* on (budget) group_left () max by (budget) ({self.n.budget_limit}{sel})"


def _all_budgets(lay: Layout, ctx: Ctx, q: _Queries) -> None:
    r = ctx.r
    lay.row("All budgets")
    lay.add(TablePanel(
        title="Budgets", sortColumn="Used", noValue="no budget spend yet",
        description="Per budget and period: share of the limit used, time until the limit at the current "
                    "rate, and the projected share at period end with a range (10th-90th percentile of the "
                    "hourly rate over the last 7 days).",
        columns={"A": ("Used", PERCENT), "B": ("Until exhausted", SECONDS),
                 "C": ("Projected at period end", PERCENT), "D": ("Projection low", PERCENT),
                 "E": ("Projection high", PERCENT)},
        targets=[target(f"{r.budget_ratio}{ALL}", "A", instant=True, table=True),
                 target(q.exhaustion(ALL), "B", instant=True, table=True),
                 target(f"{r.budget_projected}{ALL}", "C", instant=True, table=True),
                 target(q.projected(RANGE_LOW, ALL), "D", instant=True, table=True),
                 target(q.projected(RANGE_HIGH, ALL), "E", instant=True, table=True)]), 24, 8, BUDGETS_TABLE)
    lay.add(TimeSeriesPanel(
        title="Budget use over time", unit=PERCENT, colors=budget_colors(), thresholdLines=True, min=0,
        description="Share of each budget's limit used in its current period.",
        targets=[target(f"{r.budget_ratio}{ALL}", legend="{{budget}} {{period}}")]), 24, 8)


def _one_budget(lay: Layout, ctx: Ctx, q: _Queries, budget: BudgetConfig) -> None:
    r, limit = ctx.r, ctx.n.budget_limit
    one = "{budget=" + quote(budget.name) + "}"
    usd = budget.unit == "usd"
    unit = ctx.money_unit if usd else TOKENS
    spent = r.budget_spend if usd else r.budget_tokens

    def amount(expr: str) -> str:
        return ctx.money(expr) if usd else expr

    lay.row(f"Budget {budget.name}: {_limit_text(budget)} per {budget.period} (UTC{budget.utc_offset}), "
            f"scope: {_scope(budget)}")
    lay.add(stat("Spent this period", amount(f"{spent}{one}"), unit,
                 f"{'Spend' if usd else 'Tokens'} of budget {budget.name} since its {budget.period} began."), 4, 5)
    lay.add(stat("Limit", amount(f"max({limit}{one})"), unit,
                 f"The limit of budget {budget.name}, as the processor exports it."), 4, 5)
    lay.add(GaugePanel(
        title="Used", colors=budget_colors(budget.thresholds), max=1,
        description="Share of the limit used; the colors change at the alert thresholds "
                    f"({', '.join(f'{t}%' for t in budget.thresholds)}).",
        targets=[target(f"{r.budget_ratio}{one}", instant=True)]), 4, 5)
    lay.add(stat("Until exhausted", q.exhaustion(one), SECONDS,
                 "Time until the limit at the current rate (0 once exceeded).", no_value="no spend"), 4, 5)
    lay.add(StatPanel(
        title="Projected at period end", unit=unit, textMode="value_and_name",
        description="Spent so far plus the current rate times the time left (projected); low and high use "
                    "the 10th and 90th percentile of the hourly rate over the last 7 days.",
        targets=[target(amount(q.in_limit_units(q.projected(RANGE_LOW, one), one)), "A", "low", instant=True),
                 target(amount(q.in_limit_units(f"{r.budget_projected}{one}", one)), "B", "projected",
                        instant=True),
                 target(amount(q.in_limit_units(q.projected(RANGE_HIGH, one), one)), "C", "high",
                        instant=True)]), 8, 5)
    lay.add(TimeSeriesPanel(
        title="Spend against the limit", unit=unit, min=0,
        description="Period-to-date spend (it restarts at zero when a new period begins) and the limit.",
        targets=[target(amount(f"{spent}{one}"), "A", "spent ({{period}})"),
                 target(amount(f"max({limit}{one})"), "B", "limit")]), 24, 7)


def build_budgets(ctx: Ctx) -> dict[str, Any]:
    q = _Queries(ctx)
    lay = Layout()
    if ctx.config.budgets:
        _all_budgets(lay, ctx, q)
        for budget in ctx.config.budgets:
            _one_budget(lay, ctx, q, budget)
    else:
        lay.row("Budgets")
        lay.add(TextPanel(title="No budgets configured",
                          content="Add budgets under `budgets:` in genai-meter.yaml (see docs/alerts.md) and run "
                                  "`genai-meter generate`."), 24, 3)

    lay.row("Selected scope")
    lay.add(TimeSeriesPanel(
        title="Daily cost in the selected scope", unit=ctx.money_unit, bars=True, interval="1d",
        description="Cost per day for the service / provider / model / dimension filters above, to set "
                    "against a budget of the same scope.",
        targets=[target(ctx.money(ctx.total(ctx.r.cost_increase15m, window="$__interval")), legend="cost")]),
        24, 7)

    variables = ctx.variables() + [LabelVariable(name="budget", label="Budget",
                                                 query=f"label_values({ctx.n.budget_limit}, budget)")]
    return build(uid=UID, title=TITLE, layout=lay, variables=variables, time_from="30d",
                 description="Budget spend, limits, time to exhaustion and period-end projections.")
