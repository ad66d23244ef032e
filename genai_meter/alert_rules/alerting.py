"""Alerting rules: budgets, spend spikes, usage anomalies, errors, latency, metering gaps, the meter.

Every alert has a `severity` label (critical / warning / info), a `summary` that names its subject
(budget, service, model, customer, dimension, instance) from the alert's labels, a `description`,
a `dashboard_url` to the Grafana panel that shows it (filtered to the subject) and a `runbook_url`
(docs/runbooks.md#<alertname lower-cased>), added in one final pass by `with_runbooks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genai_meter import contract as c
from genai_meter.alert_rules.anomaly import anomaly_alerts
from genai_meter.config import BudgetConfig, Config
from genai_meter.contract import Contract
from genai_meter.promql import links
from genai_meter.promql.links import PanelRef, panel_url
from genai_meter.promql.names import FAILED, SCRAPE_JOB, SERVICE_MODEL, RuleNames
from genai_meter.promql.text import by, num, quote

GROUP_BUDGET_ALERTS = "genai-meter.budget-alerts"
GROUP_USAGE_ALERTS = "genai-meter.usage-alerts"
GROUP_ANOMALY_ALERTS = "genai-meter.anomaly-alerts"
GROUP_METER_ALERTS = "genai-meter.meter-alerts"

# Severities of the thresholds below 100 %, in increasing order; later ones stay critical.
THRESHOLD_SEVERITIES = ("info", "warning", "critical")
ERROR_RATE_MIN_REQUESTS = 10  # below this many requests in 10 minutes, no error-rate alert
SEEN_WINDOW = "30m"  # how long a "seen" alert (unpriced, overflow, ...) keeps firing
DELIVERY_WINDOW = "1h"  # how long a scheduled report given up keeps its alert firing
WHERE = "{{ $labels.provider }}/{{ $labels.model }} from {{ $labels.service_name }} ({{ $labels.environment }})"
SERVICE_MODEL_VARS = {"service": "service_name", "model": "model"}


@dataclass(frozen=True)
class Alert:
    """One alerting rule before serialization; `panel` and `variables` make its dashboard link."""

    name: str
    expr: str
    severity: str
    summary: str
    description: str
    panel: PanelRef
    for_: str = "0m"
    labels: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)  # dashboard variable -> alert label

    def to_rule(self, dashboard_base_url: str) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ != "0m":
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity, **self.labels}
        rule["annotations"] = {"summary": self.summary, "description": self.description,
                               "dashboard_url": panel_url(dashboard_base_url, self.panel, self.variables)}
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
    table = links.BUDGETS_TABLE
    budget_var = {"budget": "budget"}
    for budget in config.budgets:
        name = quote(budget.name)
        for threshold in budget.thresholds:
            ratio = num(threshold / 100)
            expr = f"{r.budget_ratio}{{budget={name}}} >= {ratio}"
            if threshold >= 100:
                alerts.append(Alert(
                    "LLMBudgetExceeded", expr, "critical",
                    "LLM budget {{ $labels.budget }} is exceeded in period {{ $labels.period }}.",
                    "Budget {{ $labels.budget }} has used {{ $value | humanizePercentage }} of its limit "
                    "in period {{ $labels.period }}.", table,
                    labels={"budget": budget.name, "threshold": str(threshold)}, variables=budget_var))
            else:
                alerts.append(Alert(
                    "LLMBudgetThresholdReached", expr, threshold_severity(budget, threshold),
                    "LLM budget {{ $labels.budget }} has passed an alert threshold.",
                    "Budget {{ $labels.budget }} has used {{ $value | humanizePercentage }} of its limit "
                    f"in period {{{{ $labels.period }}}}, past the {threshold}% threshold.", table,
                    labels={"budget": budget.name, "threshold": str(threshold)}, variables=budget_var))
        alerts.append(Alert(
            "LLMBudgetLimitMissing",
            f"absent({contract.names.budget_limit}{{budget={name}}})", "warning",
            "LLM budget {{ $labels.budget }} has no limit metric.",
            f"No {contract.names.budget_limit} series for budget {budget.name}: the processor is down or "
            "runs with a config that lacks this budget, so the budget alerts cannot fire.", table,
            for_="15m", labels={"budget": budget.name}, variables=budget_var))
    if config.budgets:
        alerts.append(Alert(
            "LLMBudgetExhaustionForecast",
            f"{r.budget_projected} >= 1\nand\n{r.budget_ratio} < 1", "warning",
            "LLM budget {{ $labels.budget }} is projected to run out before period {{ $labels.period }} ends.",
            "At the current rate budget {{ $labels.budget }} reaches {{ $value | humanizePercentage }} "
            "of its limit by the end of period {{ $labels.period }}.", table,
            for_="15m", variables=budget_var))
    return alerts


def usage_alerts(config: Config, r: RuleNames, contract: Contract) -> list[Alert]:
    n = contract.names
    a = config.alerts
    sm = list(SERVICE_MODEL)
    total = f"sum {by(sm)} (increase({n.requests}[10m]))"
    failed = f"sum {by(sm)} (increase({n.requests}{{{FAILED}}}[10m]))"
    spike = (f"(\n  {r.service_cost_increase1h}\n  - {r.service_cost_baseline_avg}\n)\n"
             f"/ clamp_min({r.service_cost_baseline_stddev}, {num(a.spend_spike_min_stddev_usd)})\n"
             f"> {num(a.spend_spike_zscore)}\n"
             f"and\n{r.service_cost_increase1h} > {num(a.spend_spike_min_usd_per_hour)}")
    spm = ["service_name", "provider", "model"]
    return [
        Alert("LLMSpendSpike", spike, "warning",
              "LLM spend of service {{ $labels.service_name }} ({{ $labels.environment }}) is far above its "
              "usual level for this hour.",
              "Service {{ $labels.service_name }} ({{ $labels.environment }}) spent {{ $value | printf \"%.1f\" }} "
              "standard deviations more in the last hour than in the same hour of the previous 7 days.",
              links.COST_BY_SERVICE, for_="10m", variables={"service": "service_name"}),
        Alert("LLMErrorRateHigh",
              f"{failed}\n/\n{total}\n> {num(a.error_rate)}\nand\n{total} >= {ERROR_RATE_MIN_REQUESTS}",
              "warning",
              "LLM requests to {{ $labels.provider }}/{{ $labels.model }} from {{ $labels.service_name }} are "
              "failing more than usual.",
              "{{ $value | humanizePercentage }} of requests to " + WHERE +
              f" failed in the last 10 minutes (threshold {num(a.error_rate * 100)}%).",
              links.ERROR_RATE_BY_MODEL, for_="5m", variables=SERVICE_MODEL_VARS),
        Alert("LLMLatencyP95High",
              f"histogram_quantile(0.95, sum {by(sm + ['le'])} ({r.duration_bucket_rate5m}))\n"
              f"> {num(a.latency_p95_seconds)}",
              "warning",
              "LLM latency of {{ $labels.provider }}/{{ $labels.model }} from {{ $labels.service_name }} is high.",
              "The 95th percentile latency of " + WHERE + " is {{ $value | humanizeDuration }} "
              f"(threshold {num(a.latency_p95_seconds)}s).",
              links.LATENCY_P95_BY_MODEL, for_="10m", variables=SERVICE_MODEL_VARS),
        Alert("LLMUnpricedModel", seen(n.unpriced, list(contract.unpriced_labels)), "warning",
              "LLM model {{ $labels.provider }}/{{ $labels.model }} called by {{ $labels.service_name }} has no "
              "known price.",
              "{{ $labels.provider }}/{{ $labels.model }} called by {{ $labels.service_name }} has no price: "
              "its cost is missing from every figure. Add it to the price overrides.",
              links.UNPRICED_MODELS, variables=SERVICE_MODEL_VARS),
        Alert("LLMUnmeteredCalls",
              seen(f'{n.unmetered}{{reason="{c.UNMETERED_NO_USAGE}"}}', spm), "warning",
              "LLM calls to {{ $labels.provider }}/{{ $labels.model }} from {{ $labels.service_name }} arrive "
              "without token counts.",
              "{{ $labels.service_name }} reports {{ $labels.provider }}/{{ $labels.model }} calls without token "
              "usage: they are counted as requests but add no tokens and no cost.",
              links.UNMETERED_CALLS, variables=SERVICE_MODEL_VARS),
        Alert("LLMCacheTokensUnknown",
              seen(f'{n.unmetered}{{reason="{c.UNMETERED_CACHE_UNKNOWN}"}}', spm), "info",
              "LLM cost of {{ $labels.provider }}/{{ $labels.model }} from {{ $labels.service_name }} is an upper "
              "bound: cached tokens are not reported.",
              "The instrumentation of {{ $labels.service_name }} does not report cached tokens for "
              "{{ $labels.provider }}/{{ $labels.model }}, so cache reads are priced as uncached input.",
              links.UNMETERED_CALLS, variables=SERVICE_MODEL_VARS),
    ]


def anomaly_rules(config: Config, r: RuleNames, contract: Contract) -> list[Alert]:
    return [Alert(x.name, x.expr, "warning", x.summary, x.description, x.panel, for_="10m", variables=x.variables)
            for x in anomaly_alerts(config, r, contract)]


def meter_alerts(config: Config) -> list[Alert]:
    up = f'up{{job="{SCRAPE_JOB}"}}'
    stale_days = config.pricing.stale_after_days
    return [
        Alert("LLMDimensionOverflow", seen(c.SELF_LABEL_OVERFLOW, ["dimension"]), "warning",
              "Attribution dimension {{ $labels.dimension }} has more values than its cap.",
              "New values of dimension {{ $labels.dimension }} are folded into __overflow__: totals stay "
              "exact but the breakdown loses them. Raise max_values or add an allow list.", links.LABEL_OVERFLOW),
        Alert("LLMSeriesOverflow", seen(c.SELF_SERIES_OVERFLOW, ["metric"]), "warning",
              "Usage metric {{ $labels.metric }} has reached its series cap.",
              "New label sets of {{ $labels.metric }} are folded into an __overflow__ series. Raise "
              "limits.max_series_per_metric or reduce dimensions.", links.LABEL_OVERFLOW),
        Alert("LLMSampledSpans", seen(c.SELF_SPANS_SAMPLED, []), "warning",
              "genai-meter (all services) receives spans of sampled traces.",
              "Spans carrying a probability-sampling threshold arrive: calls of unsampled traces never "
              "reach genai-meter, so usage and cost undercount. Feed genai-meter before sampling.", links.METER_SPANS),
        Alert("LLMInvalidTokenCounts",
              seen(f'{c.SELF_SPANS_REJECTED}{{reason="{c.INVALID_TOKEN_COUNT}"}}', ["instance"]), "warning",
              "genai-meter at {{ $labels.instance }} received LLM calls with impossible token counts.",
              "Spans reported token counts that are negative, not numbers, or above limits.max_tokens_per_call: "
              "those calls are stored as invalid and never priced. Check the instrumentation that sends them.",
              links.METER_SPANS),
        Alert("LLMCostOutOfRange",
              seen(f'{c.SELF_SPANS_REJECTED}{{reason="{c.INVALID_COST}"}}', ["instance"]), "warning",
              "genai-meter at {{ $labels.instance }} priced LLM calls at 9.2 million USD or more each.",
              "A price made one call cost 2^63 * 10^-12 USD or more, beyond what the ledger stores: those calls "
              "are stored as invalid, without tokens or cost, and their spend is missing. Check the price "
              "overrides (a rate per million tokens given per token?).", links.METER_SPANS),
        Alert("LLMLedgerWriteFailures",
              f"sum by (instance) (increase({c.SELF_LEDGER_FAILURES}[10m])) > 0", "critical",
              "genai-meter at {{ $labels.instance }} cannot store calls in its ledger.",
              "Requests are answered 503 and retried by the clients (nothing is lost while they retry): the "
              "ledger is locked, its disk is full or ClickHouse is down. See the serve log.", links.METER_SPANS),
        Alert("LLMLedgerDisagrees", f"{c.SELF_LEDGER_DIFFERENCE} != 0", "critical",
              "genai-meter at {{ $labels.instance }}: ledger and metrics totals differ.",
              "The cost stored in the ledger since start differs from the cost counted in the metrics by "
              "{{ $value }} USD. They are fed by the same calls and must agree: report this as a bug.",
              links.METER_SPANS, for_="5m"),
        Alert("LLMReportDeliveryFailed",
              f'sum by (schedule) (increase({c.SELF_REPORT_SCHEDULE_RUNS}{{result="failed"}}[{DELIVERY_WINDOW}])) > 0',
              "warning", "Scheduled report {{ $labels.schedule }} was not delivered: its retries ran out.",
              "Every attempt to deliver a slot of schedule {{ $labels.schedule }} failed for the schedule's "
              "retry_for_hours (24 h by default), so that export is missing. GET /api/v1/schedules on the report "
              "service shows the last error; fix the webhook or directory, the next slots are delivered as usual.",
              links.METER_SPANS),
        Alert("LLMWorkersUnresponsive", f"{c.SELF_WORKERS_UNRESPONSIVE} > 0", "warning",
              "genai-meter at {{ $labels.instance }} has workers that do not answer.",
              "{{ $value }} worker process(es) missed scrapes; their last figures are shown and a worker "
              "silent for 5 s is restarted. Persistent: the host is overloaded or a worker is stuck.",
              links.METER_SPANS, for_="2m"),
        Alert("LLMMeterDown", f"{up} == 0", "critical",
              "genai-meter at {{ $labels.instance }} cannot be scraped.",
              "Prometheus cannot scrape genai-meter at {{ $labels.instance }}: LLM usage and cost are not "
              "being recorded from it.", links.METER_SPANS,
              for_="5m"),
        Alert("LLMMeterAbsent", f"absent({up})", "critical",
              f"genai-meter (job {SCRAPE_JOB}) is not being scraped at all.",
              f'Prometheus has no target of job "{SCRAPE_JOB}": LLM usage and cost are not being measured.',
              links.METER_SPANS, for_="10m"),
        Alert("LLMPriceCatalogStale", f"(time() - {c.SELF_PRICING_CATALOG_TIME}) / 86400 > {stale_days}", "info",
              "genai-meter at {{ $labels.instance }} prices calls with an old price catalog.",
              "The price catalog in use dates from {{ $value | printf \"%.0f\" }} days ago (more than "
              f"{stale_days}, pricing.stale_after_days): new models and price changes since then are missing. "
              "Run genai-meter prices update and restart.", links.METER_SPANS, for_="1h"),
        Alert("LLMWatchdog", "vector(1)", "info",
              "The LLM alerting pipeline (Prometheus to Alertmanager) is working.",
              "This alert always fires. If it stops arriving, Prometheus or Alertmanager is broken.",
              links.METER_SPANS),
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
    base = config.alerts.dashboard_base_url

    def rules(alerts: list[Alert]) -> list[dict[str, Any]]:
        return [a.to_rule(base) for a in alerts]

    groups = [
        {"name": GROUP_BUDGET_ALERTS, "rules": rules(budget_alerts(config, r, contract))},
        {"name": GROUP_USAGE_ALERTS, "rules": rules(usage_alerts(config, r, contract))},
        {"name": GROUP_ANOMALY_ALERTS, "rules": rules(anomaly_rules(config, r, contract))},
        {"name": GROUP_METER_ALERTS, "rules": rules(meter_alerts(config))},
    ]
    return with_runbooks([g for g in groups if g["rules"]], config.alerts.runbook_base_url)
