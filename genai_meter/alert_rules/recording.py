"""Recording rules: fast series for the dashboards (90-day ranges) and the alerts.

`build_recording_groups(config)` returns the rule groups as plain data (Prometheus rule-file
shape). Names come from `promql.names.RuleNames`, so the dashboards query exactly these series.
"""

from __future__ import annotations

from typing import Any

from genai_meter.alert_rules.anomaly import build_baseline_group
from genai_meter.config import Config
from genai_meter.contract import Contract
from genai_meter.promql.names import SERVICE, SERVICE_MODEL, SERVICE_MODEL_OPERATION, RuleNames
from genai_meter.promql.text import RATE_WINDOW, by, period_seconds_left, quote, seasonal_mean, seasonal_stddev

GROUP_RATE5M = "genai-meter.usage.rate5m"
GROUP_INCREASE15M = "genai-meter.usage.increase15m"
GROUP_SPEND_BASELINE = "genai-meter.spend-baseline"
GROUP_BUDGETS = "genai-meter.budgets"
INCREASE15M_INTERVAL = "15m"  # must equal the increase window: the dashboards sum the samples


def _rule(record: str, expr: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": record, "expr": expr}
    if labels:
        rule["labels"] = labels
    return rule


def _rate5m_group(contract: Contract, r: RuleNames) -> dict[str, Any]:
    n = contract.names
    sm, smo = list(SERVICE_MODEL), list(SERVICE_MODEL_OPERATION)
    return {
        "name": GROUP_RATE5M,
        "rules": [
            _rule(r.requests_rate5m, f"sum {by(sm + ['status'])} (rate({n.requests}[5m]))"),
            _rule(r.tokens_rate5m, f"sum {by(sm + ['token_type'])} (rate({n.tokens}[5m]))"),
            _rule(r.cost_rate5m, f"sum {by(sm)} (rate({n.cost}[5m]))"),
            _rule(r.duration_bucket_rate5m, f"sum {by(smo + ['le'])} (rate({n.duration}_bucket[5m]))"),
            _rule(r.duration_sum_rate5m, f"sum {by(smo)} (rate({n.duration}_sum[5m]))"),
            _rule(r.ttft_bucket_rate5m, f"sum {by(smo + ['le'])} (rate({n.ttft}_bucket[5m]))"),
            _rule(r.errors_rate5m, f"sum {by(sm + ['error_type'])} (rate({n.request_errors}[5m]))"),
        ],
    }


def _increase15m_group(contract: Contract, r: RuleNames) -> dict[str, Any]:
    n = contract.names
    attribution = list(r.attribution_labels)
    sm, smo = list(SERVICE_MODEL), list(SERVICE_MODEL_OPERATION)
    return {
        "name": GROUP_INCREASE15M,
        "interval": INCREASE15M_INTERVAL,
        "rules": [
            _rule(r.requests_increase15m, f"sum {by(attribution + ['status'])} (increase({n.requests}[15m]))"),
            _rule(r.tokens_increase15m, f"sum {by(attribution + ['token_type'])} (increase({n.tokens}[15m]))"),
            _rule(r.cost_increase15m, f"sum {by(attribution + ['cost_type'])} (increase({n.cost}[15m]))"),
            _rule(r.duration_bucket_increase15m, f"sum {by(smo + ['le'])} (increase({n.duration}_bucket[15m]))"),
            _rule(r.duration_sum_increase15m, f"sum {by(smo)} (increase({n.duration}_sum[15m]))"),
            _rule(r.ttft_bucket_increase15m, f"sum {by(smo + ['le'])} (increase({n.ttft}_bucket[15m]))"),
            _rule(r.errors_increase15m, f"sum {by(sm + ['error_type'])} (increase({n.request_errors}[15m]))"),
        ],
    }


def _spend_baseline_group(contract: Contract, r: RuleNames) -> dict[str, Any]:
    """Last hour's spend by service and its same-hour mean and deviation over the last 7 days.

    Days 1-6 missing from history count as zero spend; day 7 must exist, so a service needs a
    week of history before its spend can look like a spike.
    """
    b = r.baseline("service", "cost_usd")
    return {
        "name": GROUP_SPEND_BASELINE,
        "rules": [
            _rule(b.increase1h, f"sum {by(list(SERVICE))} (increase({contract.names.cost}[1h]))"),
            _rule(b.avg, seasonal_mean(b.increase1h)),
            _rule(b.stddev, seasonal_stddev(b.increase1h, b.avg)),
        ],
    }


def period_to_date(counter: str) -> str:
    """Each budget's current-period total, exact across processor restarts and replicas.

    `increase` over 32 days absorbs counter resets; the `and on (budget, period)` keeps only
    periods some processor still exports (old periods are dropped when a new one starts), and
    keeps the series of replicas that went away during the period.
    """
    return (f"sum by (budget, period) (\n  increase({counter}[32d])\n"
            f"  and on (budget, period) group by (budget, period) ({counter})\n)")


def run_rate(series: str, window: str) -> str:
    """A budget's current rate: its spend of the last `window` over the time that spend took.

    The time runs from when the budget's series first existed within the window to now, at
    least a minute, at most the window: spend that began minutes ago is read at its own pace, not
    diluted over the window. The report service projects with the same rate
    (reports/insights/projection.py), so the page and the forecast alert agree.
    """
    seconds = int(window[:-1]) * {"m": 60, "h": 3600, "d": 86400}[window[-1]]
    resolution = "15s" if seconds <= 3600 else "1m"  # when the series began, to a scrape or so
    # a series younger than one subquery step has no step yet: it began just now (the one-minute floor)
    began = (f"(time() - min_over_time(timestamp(sum by (budget) ({series}))[{window}:{resolution}])\n"
             f"    or on (budget) 0 * sum by (budget) ({series}))")
    return (f"sum by (budget) (increase({series}[{window}]))\n"
            f"  / on (budget) clamp({began}, 60, {seconds})")


def _budget_group(config: Config, contract: Contract, r: RuleNames) -> dict[str, Any]:
    n = contract.names
    limit = n.budget_limit
    rules = [
        _rule(r.budget_spend, period_to_date(n.budget_spend)),
        _rule(r.budget_tokens, period_to_date(n.budget_tokens)),
        _rule(r.budget_ratio,
              f'{r.budget_spend}\n  / on (budget) group_left () max by (budget) ({limit}{{unit="usd"}})\n'
              f'or\n{r.budget_tokens}\n  / on (budget) group_left () max by (budget) ({limit}{{unit="tokens"}})'),
    ]
    for budget in config.budgets:
        counter = n.budget_spend if budget.unit == "usd" else n.budget_tokens
        name = quote(budget.name)
        window = RATE_WINDOW[budget.period]
        rules.append(_rule(r.budget_ratio_rate, run_rate(f"{counter}{{budget={name}}}", window)
                           + f"\n  / on (budget) max by (budget) ({limit}{{budget={name}}})", {"budget": budget.name}))
        rules.append(_rule(
            r.budget_seconds_left,
            f'label_replace({period_seconds_left(budget)}, "budget", {name}, "", "")',
            {"budget": budget.name}))
    if config.budgets:
        rules.append(_rule(
            r.budget_projected,
            f"{r.budget_ratio}\n  + on (budget) group_left ()\n"
            f"({r.budget_ratio_rate} * on (budget) {r.budget_seconds_left})"))
    return {"name": GROUP_BUDGETS, "rules": rules}


def build_recording_groups(config: Config) -> list[dict[str, Any]]:
    """All recording rule groups for `config`, in evaluation order."""
    contract = Contract.from_config(config)
    r = RuleNames.of(contract)
    return [
        _rate5m_group(contract, r),
        _increase15m_group(contract, r),
        _spend_baseline_group(contract, r),
        build_baseline_group(contract, r),
        _budget_group(config, contract, r),
    ]
