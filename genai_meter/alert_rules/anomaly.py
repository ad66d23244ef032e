"""Usage anomalies: requests, tokens and cost per customer and per model against the same hour of
the last 7 days (a seasonal z-score with a floor on the deviation and a minimum volume).

Recording rules keep the last hour's usage per scope and its same-hour mean and deviation; an
alert fires when the last hour is `anomaly_zscore` deviations above the mean, the deviation being at
least `anomaly_min_stddev_<unit>` and `anomaly_min_stddev_ratio` of the mean (a flat history would
otherwise make any change infinite), and the hour's volume is at least `anomaly_min_<unit>_per_hour`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genai_meter.config import AlertsConfig, Config
from genai_meter.contract import Contract
from genai_meter.promql.links import REQUESTS_BY_MODEL, TOP_USAGE, PanelRef
from genai_meter.promql.names import ANOMALY_METRICS, ANOMALY_SCOPES, RuleNames
from genai_meter.promql.text import by, num, seasonal_mean, seasonal_stddev

GROUP_USAGE_BASELINES = "genai-meter.usage-baselines"


@dataclass(frozen=True)
class Unit:
    """How one metric is read, named and bounded."""

    title: str  # Requests, Tokens, Cost
    noun: str  # "requests", "tokens", "USD"
    min_per_hour: float
    min_stddev: float
    verb: str  # "are" / "is"


def units(a: AlertsConfig) -> dict[str, Unit]:
    return {
        "requests": Unit("Requests", "requests", a.anomaly_min_requests_per_hour, a.anomaly_min_stddev_requests, "are"),
        "tokens": Unit("Tokens", "tokens", a.anomaly_min_tokens_per_hour, a.anomaly_min_stddev_tokens, "are"),
        "cost_usd": Unit("Cost", "USD", a.anomaly_min_usd_per_hour, a.anomaly_min_stddev_usd, "is"),
    }


def scopes(contract: Contract) -> dict[str, tuple[str, ...]]:
    """The anomaly scopes this contract can carry (customer only when that dimension is on)."""
    return {name: labels for name, labels in ANOMALY_SCOPES.items()
            if name != "customer" or "customer" in contract.dimensions}


def source(contract: Contract, metric: str) -> str:
    n = contract.names
    return {"requests": n.requests, "tokens": n.tokens, "cost_usd": n.cost}[metric]


def build_baseline_group(contract: Contract, r: RuleNames) -> dict[str, Any]:
    """Last hour, same-hour mean and deviation for every scope x metric."""
    rules: list[dict[str, Any]] = []
    for scope, labels in scopes(contract).items():
        for metric in ANOMALY_METRICS:
            b = r.baseline(scope, metric)
            rules += [
                {"record": b.increase1h, "expr": f"sum {by(list(labels))} (increase({source(contract, metric)}[1h]))"},
                {"record": b.avg, "expr": seasonal_mean(b.increase1h)},
                {"record": b.stddev, "expr": seasonal_stddev(b.increase1h, b.avg)},
            ]
    return {"name": GROUP_USAGE_BASELINES, "rules": rules}


def alert_name(scope: str, unit: Unit) -> str:
    """LLMCustomerRequestsAnomaly, LLMModelCostAnomaly, ..."""
    return f"LLM{scope.capitalize()}{unit.title}Anomaly"


def anomaly_expr(r: RuleNames, scope: str, metric: str, a: AlertsConfig, unit: Unit) -> str:
    b = r.baseline(scope, metric)
    ratio = num(a.anomaly_min_stddev_ratio)
    floor = f"clamp_min(\n  {b.stddev} >= {b.avg} * {ratio}\n  or {b.avg} * {ratio},\n  {num(unit.min_stddev)}\n)"
    return (f"(\n  {b.increase1h}\n  - {b.avg}\n)\n/ {floor}\n> {num(a.anomaly_zscore)}\n"
            f"and\n{b.increase1h} >= {num(unit.min_per_hour)}")


@dataclass(frozen=True)
class AnomalyAlert:
    """What `alerting.Alert` needs, kept here so the anomaly rules stay in one module."""

    name: str
    expr: str
    summary: str
    description: str
    panel: PanelRef
    variables: dict[str, str]


def anomaly_alerts(config: Config, r: RuleNames, contract: Contract) -> list[AnomalyAlert]:
    a = config.alerts
    out: list[AnomalyAlert] = []
    for scope in scopes(contract):
        subject = ("customer {{ $labels.customer }}" if scope == "customer"
                   else "model {{ $labels.provider }}/{{ $labels.model }}")
        panel, variables = ((TOP_USAGE, {"customer": "customer"}) if scope == "customer"
                            else (REQUESTS_BY_MODEL, {"model": "model"}))
        for metric, unit in units(a).items():
            out.append(AnomalyAlert(
                alert_name(scope, unit), anomaly_expr(r, scope, metric, a, unit),
                f"{unit.title} of {subject} {unit.verb} far above the usual for this hour.",
                f"In the last hour, {unit.title.lower()} of {subject} {unit.verb} {{{{ $value | printf \"%.1f\" }}}} "
                f"standard deviations above the same hour of the previous 7 days (threshold "
                f"{num(a.anomaly_zscore)}; alerts need at least {num(unit.min_per_hour)} {unit.noun} an hour).",
                panel, variables))
    return out
