"""Prometheus recording and alerting rules, the Alertmanager example and the Prometheus config,
all built from the one config (pure functions: config in, data out)."""

from __future__ import annotations

from typing import Any

from genai_meter.alert_rules.alerting import build_alert_groups
from genai_meter.alert_rules.alertmanager import build_alertmanager
from genai_meter.alert_rules.catalog import build_priced_models_group
from genai_meter.alert_rules.prometheus_config import RETENTION, build_prometheus_config, server_flags
from genai_meter.alert_rules.reconciliation import build_reconciliation_groups
from genai_meter.alert_rules.recording import build_recording_groups
from genai_meter.config import Config
from genai_meter.contract import Contract
from genai_meter.promql.names import RuleNames

RECORDING_FILE = "genai-meter-recording.yaml"
ALERTS_FILE = "genai-meter-alerts.yaml"
PRICED_MODELS_FILE = "genai-meter-priced-models.yaml"


def build_rules(config: Config) -> dict[str, dict[str, Any]]:
    """Rule files by file name, each a Prometheus rule-file mapping (`{"groups": [...]}`)."""
    return {
        RECORDING_FILE: {"groups": build_recording_groups(config)},
        ALERTS_FILE: {"groups": build_alert_groups(config) + build_reconciliation_groups(config)},
        PRICED_MODELS_FILE: {"groups": [build_priced_models_group(config, RuleNames.of(Contract.from_config(config)))]},
    }


__all__ = ["ALERTS_FILE", "PRICED_MODELS_FILE", "RECORDING_FILE", "RETENTION", "RuleNames", "build_alertmanager",
           "build_prometheus_config", "build_rules", "server_flags"]
