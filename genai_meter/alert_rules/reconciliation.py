"""The reconciliation alert: the providers' own reports drift from the ledger by more than a share.

The report service exports `genai_meter_reconciliation_difference_usd{provider}` (the provider's cost
minus the ledger's) and `genai_meter_reconciliation_provider_cost_usd{provider}` over the last
`reconcile.alert_days` whole UTC days a stored provider report covers (GET /api/v1/reconciliation/metrics,
an admin token; docs/reconciliation.md). The alert fires when the drift, either way, passes
`reconcile.alert_share` of the provider's cost and is at least `reconcile.alert_min_usd`.
"""

from __future__ import annotations

from typing import Any

from genai_meter import contract as c
from genai_meter.alert_rules.alerting import Alert, with_runbooks
from genai_meter.config import Config
from genai_meter.promql import links
from genai_meter.promql.text import num

GROUP_RECONCILIATION_ALERTS = "genai-meter.reconciliation-alerts"
FOR = "30m"  # an import or pull in progress changes the figures for a moment


def reconciliation_alerts(config: Config) -> list[Alert]:
    r = config.reconcile
    drift = f"abs({c.SELF_RECONCILIATION_DIFFERENCE})"
    expr = (f"{drift}\n> {num(float(r.alert_share))} * {c.SELF_RECONCILIATION_PROVIDER_COST}\n"
            f"and\n{drift} >= {num(float(r.alert_min_usd))}")
    return [Alert(
        "LLMReconciliationDrift", expr, "warning",
        "The cost {{ $labels.provider }} reports differs from the ledger's by more than "
        f"{num(float(r.alert_share) * 100)}%.",
        "Over the last " + str(r.alert_days) + " days the provider's own reports and the ledger differ by "
        "{{ $value | printf \"%.2f\" }} USD (reconcile.alert_share " + num(float(r.alert_share)) + "). "
        "GET /api/v1/reconciliation (or the Reconciliation page) names the days, models and the cause of each gap.",
        links.COST_BY_SERVICE, for_=FOR)]


def build_reconciliation_groups(config: Config) -> list[dict[str, Any]]:
    """The reconciliation's alerting rule group, runbook links added."""
    base = config.alerts.dashboard_base_url
    rules = [a.to_rule(base) for a in reconciliation_alerts(config)]
    return with_runbooks([{"name": GROUP_RECONCILIATION_ALERTS, "rules": rules}], config.alerts.runbook_base_url)
