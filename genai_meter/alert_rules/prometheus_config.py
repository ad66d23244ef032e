"""The Prometheus server config for the local stack and docker-compose, and its retention flag.

Retention is a command-line flag in Prometheus 2.x (not a config-file key), so it lives here as
`RETENTION` and `server_flags()`; docker-compose.yml and the test helpers pass it.
"""

from __future__ import annotations

from typing import Any

from genai_meter.config import Config
from genai_meter.promql.names import (
    RECONCILIATION_METRICS_PATH,
    RECONCILIATION_SCRAPE_JOB,
    REPORTS_METRICS_PATH,
    REPORTS_SCRAPE_JOB,
    SCRAPE_JOB,
)

# 90-day views compare with the previous 90 days: keep 180 days plus a margin (>= 100 days).
RETENTION = "190d"
RETENTION_DAYS = 190


def server_flags(config_file: str, data_dir: str, listen: str) -> list[str]:
    """The Prometheus command-line flags genai-meter expects (retention included)."""
    return [
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={listen}",
    ]


def build_prometheus_config(
    config: Config,
    *,
    meter_targets: list[str],
    alertmanager_targets: list[str],
    rule_files: list[str],
    scrape_interval: str = "15s",
    evaluation_interval: str = "1m",
    self_target: str | None = "localhost:9090",
    reports_targets: list[str] | None = None,
    reports_credentials_file: str | None = None,
) -> dict[str, Any]:
    """A Prometheus config scraping genai-meter as job `genai-meter` and loading the rules; with
    `reports_targets`, also the report service: its self-metrics as `genai-meter-reports` (public, for the
    schedule alerts) and the reconciliation gauges as `genai-meter-reconciliation` (admin: the bearer
    token is read from `reports_credentials_file`; without one the service must run without tokens)."""
    del config
    scrape_configs: list[dict[str, Any]] = [
        {"job_name": SCRAPE_JOB, "scrape_interval": scrape_interval,
         "static_configs": [{"targets": list(meter_targets)}]},
    ]
    if reports_targets:
        scrape_configs.append({"job_name": REPORTS_SCRAPE_JOB, "scrape_interval": scrape_interval,
                               "metrics_path": REPORTS_METRICS_PATH,
                               "static_configs": [{"targets": list(reports_targets)}]})
        reconciliation: dict[str, Any] = {"job_name": RECONCILIATION_SCRAPE_JOB, "scrape_interval": "5m",
                                          "scrape_timeout": "1m", "metrics_path": RECONCILIATION_METRICS_PATH}
        if reports_credentials_file:
            reconciliation["authorization"] = {"credentials_file": reports_credentials_file}
        scrape_configs.append({**reconciliation, "static_configs": [{"targets": list(reports_targets)}]})
    if self_target:
        scrape_configs.append({"job_name": "prometheus", "static_configs": [{"targets": [self_target]}]})
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "rule_files": list(rule_files),
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": list(alertmanager_targets)}]}]},
        "scrape_configs": scrape_configs,
    }
