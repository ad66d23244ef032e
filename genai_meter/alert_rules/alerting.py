"""Alerting rules: budgets, spend spikes, errors, latency, metering gaps, the meter itself.

Every alert has a `severity` label (critical / warning / info), a fixed `summary`, a
`description` filled from labels, and a `runbook_url` (docs/runbooks.md#<alertname lower-cased>)
added in one final pass by `with_runbooks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genai_meter import contract as c
from genai_meter.alert_rules.naming import SCRAPE_JOB, SERVICE_MODEL, RuleNames, by
from genai_meter.alert_rules.promql import num, quote
from genai_meter.config import BudgetConfig, Config
from genai_meter.contract import Contract

GROUP_BUDGET_ALERTS = "genai-meter.budget-alerts"
GROUP_USAGE_ALERTS = "genai-meter.usage-alerts"
GROUP_METER_ALERTS = "genai-meter.meter-alerts"

# Severities of the thresholds below 100 %, in increasing order; later ones stay critical.
THRESHOLD_SEVERITIES = ("info", "warning", "critical")
ERROR_RATE_MIN_REQUESTS = 10  # below this many requests in 10 minutes, no error-rate alert
SEEN_WINDOW = "30m"  # how long a "seen" alert (unpriced, overflow, ...) keeps firing


@dataclass(frozen=True)
class Alert:
    """One alerting rule before serialization."""

    name: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str = "0m"
    labels: dict[str, str] = field(default_factory=dict)

    def to_rule(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ != "0m":
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity, **self.labels}
        rule["annotations"] = {"summary": self.summary, "description": self.description}
        return rule


def threshold_severity(budget: BudgetConfig, threshold: int) -> str:
    """info / warning / critical for the first, second, third+ threshold below 100 %."""
    below = [t for t in budget.thresholds if t < 100]
    return THRESHOLD_SEVERITIES[min(below.index(threshold), len(THRESHOLD_SEVERITIES) - 1)]


def seen(counter: str, labels: list[str]) -> str:
    """Label sets whose counter grew in the last SEEN_WINDOW, including series born in it.

    A counter that first appears already at 1 has no increase (one sample); `unless ... offset`
    catches those.
    """
    w = SEEN_WINDOW
    return (f"sum {by(labels)} (\n  increase({counter}[{w}]) > 0\n"
            f"  or ({counter} unless {counter} offset {w})\n) > 0")


def budget_alerts(config: Config, r: RuleNames, contract: Contract) -> list[Alert]:
    alerts: list[Alert] = []
    for budget in config.budgets:
        name = quote(budget.name)
        for threshold in budget.thresholds:
            ratio = num(threshold / 100)
            expr = f"{r.budget_ratio}{{budget={name}}} >= {ratio}"
            if threshold >= 100:
                alerts.append(Alert(
                    "LLMBudgetExceeded", expr, "critical",
                    "An LLM budget is exceeded.",
                    "Budget {{ $labels.budget }} has used {{ $value | humanizePercentage }} of its limit "
                    "in period {{ $labels.period }}.",
                    labels={"budget": budget.name, "threshold": str(threshold)}))
            else:
                alerts.append(Alert(
                    "LLMBudgetThresholdReached", expr, threshold_severity(budget, threshold),
                    "An LLM budget has passed an alert threshold.",
                    "Budget {{ $labels.budget }} has used {{ $value | humanizePercentage }} of its limit "
                    f"in period {{{{ $labels.period }}}}, past the {threshold}% threshold.",
                    labels={"budget": budget.name, "threshold": str(threshold)}))
        alerts.append(Alert(
            "LLMBudgetLimitMissing",
            f"absent({contract.names.budget_limit}{{budget={name}}})", "warning",
            "A configured LLM budget has no limit metric.",
            f"No {contract.names.budget_limit} series for budget {budget.name}: the processor is down or "
            "runs with a config that lacks this budget, so the budget alerts cannot fire.",
            for_="15m", labels={"budget": budget.name}))
    if config.budgets:
        alerts.append(Alert(
            "LLMBudgetExhaustionForecast",
            f"{r.budget_projected} >= 1\nand\n{r.budget_ratio} < 1", "warning",
            "An LLM budget is projected to run out before its period ends.",
            "At the current rate budget {{ $labels.budget }} reaches {{ $value | humanizePercentage }} "
            "of its limit by the end of period {{ $labels.period }}.",
            for_="15m"))
    return alerts


def usage_alerts(config: Config, r: RuleNames, contract: Contract) -> list[Alert]:
    n = contract.names
    a = config.alerts
    sm = list(SERVICE_MODEL)
    total = f"sum {by(sm)} (increase({n.requests}[10m]))"
    failed = f'sum {by(sm)} (increase({n.requests}{{status="{c.STATUS_ERROR}"}}[10m]))'
    spike = (f"(\n  {r.service_cost_increase1h}\n  - {r.service_cost_baseline_avg}\n)\n"
             f"/ clamp_min({r.service_cost_baseline_stddev}, {num(a.spend_spike_min_stddev_usd)})\n"
             f"> {num(a.spend_spike_zscore)}\n"
             f"and\n{r.service_cost_increase1h} > {num(a.spend_spike_min_usd_per_hour)}")
    where = "{{ $labels.provider }}/{{ $labels.model }} from {{ $labels.service_name }} ({{ $labels.environment }})"
    return [
        Alert("LLMSpendSpike", spike, "warning",
              "LLM spend is far above its usual level for this hour.",
              "Service {{ $labels.service_name }} ({{ $labels.environment }}) spent {{ $value | printf \"%.1f\" }} "
              "standard deviations more in the last hour than in the same hour of the previous 7 days.",
              for_="10m"),
        Alert("LLMErrorRateHigh",
              f"{failed}\n/\n{total}\n> {num(a.error_rate)}\nand\n{total} >= {ERROR_RATE_MIN_REQUESTS}",
              "warning",
              "LLM requests are failing more than usual.",
              "{{ $value | humanizePercentage }} of requests to " + where +
              f" failed in the last 10 minutes (threshold {num(a.error_rate * 100)}%).",
              for_="5m"),
        Alert("LLMLatencyP95High",
              f"histogram_quantile(0.95, sum {by(sm + ['le'])} ({r.duration_bucket_rate5m}))\n"
              f"> {num(a.latency_p95_seconds)}",
              "warning",
              "LLM request latency is high.",
              "The 95th percentile latency of " + where + " is {{ $value | humanizeDuration }} "
              f"(threshold {num(a.latency_p95_seconds)}s).",
              for_="10m"),
        Alert("LLMUnpricedModel", seen(n.unpriced, list(contract.unpriced_labels)), "warning",
              "An LLM model has no known price.",
              "{{ $labels.provider }}/{{ $labels.model }} called by {{ $labels.service_name }} has no price: "
              "its cost is missing from every figure. Add it to the price overrides."),
        Alert("LLMUnmeteredCalls",
              seen(f'{n.unmetered}{{reason="{c.UNMETERED_NO_USAGE}"}}', ["service_name", "provider", "model"]),
              "warning",
              "LLM calls arrive without token counts.",
              "{{ $labels.service_name }} reports {{ $labels.provider }}/{{ $labels.model }} calls without token "
              "usage: they are counted as requests but add no tokens and no cost."),
        Alert("LLMCacheTokensUnknown",
              seen(f'{n.unmetered}{{reason="{c.UNMETERED_CACHE_UNKNOWN}"}}', ["service_name", "provider", "model"]),
              "info",
              "LLM cost is an upper bound: cached tokens are not reported.",
              "The instrumentation of {{ $labels.service_name }} does not report cached tokens for "
              "{{ $labels.provider }}/{{ $labels.model }}, so cache reads are priced as uncached input."),
    ]


def meter_alerts(config: Config) -> list[Alert]:
    up = f'up{{job="{SCRAPE_JOB}"}}'
    return [
        Alert("LLMDimensionOverflow", seen(c.SELF_LABEL_OVERFLOW, ["dimension"]), "warning",
              "An attribution dimension has more values than its cap.",
              "New values of dimension {{ $labels.dimension }} are folded into __overflow__: totals stay "
              "exact but the breakdown loses them. Raise max_values or add an allow list."),
        Alert("LLMSeriesOverflow", seen(c.SELF_SERIES_OVERFLOW, ["metric"]), "warning",
              "A usage metric has reached its series cap.",
              "New label sets of {{ $labels.metric }} are folded into an __overflow__ series. Raise "
              "limits.max_series_per_metric or reduce dimensions."),
        Alert("LLMSampledSpans", seen(c.SELF_SPANS_SAMPLED, []), "warning",
              "genai-meter receives spans of sampled traces.",
              "Spans carrying a probability-sampling threshold arrive: calls of unsampled traces never "
              "reach genai-meter, so usage and cost undercount. Feed genai-meter before sampling."),
        Alert("LLMMeterDown", f"{up} == 0", "critical",
              "genai-meter cannot be scraped.",
              "Prometheus cannot scrape genai-meter at {{ $labels.instance }}: LLM usage and cost are not "
              "being recorded from it.",
              for_="5m"),
        Alert("LLMMeterAbsent", f"absent({up})", "critical",
              "genai-meter is not being scraped at all.",
              f'Prometheus has no target of job "{SCRAPE_JOB}": LLM usage and cost are not being measured.',
              for_="10m"),
        Alert("LLMWatchdog", "vector(1)", "info",
              "The LLM alerting pipeline is working.",
              "This alert always fires. If it stops arriving, Prometheus or Alertmanager is broken."),
    ]


def with_runbooks(groups: list[dict[str, Any]], base_url: str) -> list[dict[str, Any]]:
    """Add `runbook_url` (base_url#alertname-lower-cased) to every alert: the one final pass."""
    for group in groups:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["annotations"]["runbook_url"] = f"{base_url}#{rule['alert'].lower()}"
    return groups


def build_alert_groups(config: Config) -> list[dict[str, Any]]:
    """All alerting rule groups for `config`."""
    contract = Contract.from_config(config)
    r = RuleNames.of(contract)
    groups = [
        {"name": GROUP_BUDGET_ALERTS, "rules": [a.to_rule() for a in budget_alerts(config, r, contract)]},
        {"name": GROUP_USAGE_ALERTS, "rules": [a.to_rule() for a in usage_alerts(config, r, contract)]},
        {"name": GROUP_METER_ALERTS, "rules": [a.to_rule() for a in meter_alerts(config)]},
    ]
    return with_runbooks([g for g in groups if g["rules"]], config.alerts.runbook_base_url)
