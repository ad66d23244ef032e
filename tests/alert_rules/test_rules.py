"""Prometheus rules: promtool check on every generated file (several configs), the promtool unit
tests in tests/alert_rules/rules/ (every alert with a firing and a must-not-fire case), naming and metadata."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_meter.alert_rules import build_rules
from genai_meter.alert_rules.alerting import threshold_severity
from genai_meter.config import Config, load_config, parse_config
from genai_meter.generate import dump_yaml
from tests.support.prometheus import promtool

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "genai-meter.yaml"
UNIT_TESTS = sorted((REPO / "tests" / "alert_rules" / "rules").glob("*.test.yaml"))
ALWAYS_FIRING = {"LLMWatchdog"}  # no must-not-fire case possible

CUSTOM = {
    "metric_prefix": "acme_ai",
    "dimensions": {"customer": {"attributes": ["customer.id"]}, "user": {"attributes": ["enduser.id"]},
                   "team": {"attributes": ["team.id"]}},
    "pricing": {"currency": {"code": "EUR", "per_usd": "0.92"}},
    "budgets": [
        {"name": "eu-monthly", "period": "month", "utc_offset": "+05:30", "limit_usd": 1000},
        {"name": "team-a", "match": {"team": "~team-a.*", "provider": "openai"}, "period": "week",
         "utc_offset": "-08:00", "limit_tokens": 5000000, "thresholds": [60, 70, 80, 90, 100, 120]},
        {"name": "daily", "period": "day", "limit_usd": "12.5", "thresholds": [50, 100]},
    ],
    "alerts": {"spend_spike_zscore": 2.5, "error_rate": 0.1, "latency_p95_seconds": 7.5,
               "runbook_base_url": "https://runbooks.example.com/llm"},
}


def configs() -> dict[str, Config]:
    return {"defaults": Config(), "example": load_config(EXAMPLE), "custom": parse_config(CUSTOM)}


def rules_of(config: Config) -> list[dict[str, Any]]:
    return [rule for rules in build_rules(config).values() for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("name", ["defaults", "example", "custom"])
def test_promtool_check_rules(name: str, tmp_path: Path) -> None:
    paths = []
    for file_name, rules in build_rules(configs()[name]).items():
        path = tmp_path / file_name
        path.write_text(dump_yaml(rules), encoding="utf-8")
        paths.append(str(path))
    result = promtool("check", "rules", *paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(paths)


def test_promtool_check_committed_rules() -> None:
    paths = sorted(str(p) for p in (REPO / "deploy" / "prometheus" / "rules").glob("*.yaml"))
    assert len(paths) == 3
    result = promtool("check", "rules", *paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests() -> None:
    """tests/alert_rules/rules/*.test.yaml against the committed rules (generated from deploy/genai-meter.yaml)."""
    assert UNIT_TESTS
    result = promtool("test", "rules", *map(str, UNIT_TESTS), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_firing_and_must_not_fire_cases() -> None:
    alerts = {rule["alert"] for rule in rules_of(load_config(EXAMPLE)) if "alert" in rule}
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert alerts - firing == set(), "alerts without a firing test case"
    assert alerts - ALWAYS_FIRING - quiet == set(), "alerts without a must-not-fire test case"
    assert (firing | quiet) <= alerts, "tests of alerts that do not exist"


@pytest.mark.parametrize("name", ["defaults", "example", "custom"])
def test_recording_rule_names(name: str) -> None:
    config = configs()[name]
    for rule in rules_of(config):
        if "record" in rule:
            level, metric, operation = rule["record"].split(":")
            assert re.fullmatch(r"[a-z_]+", level) and re.fullmatch(r"[a-z0-9_]+", operation), rule["record"]
            assert metric.startswith(config.metric_prefix + "_") and not metric.endswith("_total"), rule["record"]


# The labels an alert's summary must name (issue: "every alert's summary names its subject").
SUBJECTS = {
    "LLMBudgetThresholdReached": ["budget"], "LLMBudgetExceeded": ["budget", "period"],
    "LLMBudgetLimitMissing": ["budget"], "LLMBudgetExhaustionForecast": ["budget", "period"],
    "LLMSpendSpike": ["service_name", "environment"], "LLMErrorRateHigh": ["provider", "model", "service_name"],
    "LLMLatencyP95High": ["provider", "model", "service_name"], "LLMUnpricedModel": ["provider", "model", "service_name"],
    "LLMUnmeteredCalls": ["provider", "model", "service_name"],
    "LLMCacheTokensUnknown": ["provider", "model", "service_name"], "LLMDimensionOverflow": ["dimension"],
    "LLMSeriesOverflow": ["metric"], "LLMMeterDown": ["instance"],
    "LLMInvalidTokenCounts": ["instance"], "LLMCostOutOfRange": ["instance"], "LLMLedgerWriteFailures": ["instance"],
    "LLMLedgerDisagrees": ["instance"], "LLMWorkersUnresponsive": ["instance"], "LLMReportDeliveryFailed": ["schedule"],
    "LLMPriceCatalogStale": ["instance"], "LLMReconciliationDrift": ["provider"],
    **{f"LLMCustomer{m}Anomaly": ["customer"] for m in ("Requests", "Tokens", "Cost")},
    **{f"LLMModel{m}Anomaly": ["provider", "model"] for m in ("Requests", "Tokens", "Cost")},
}
FIXED_SUBJECTS = {"LLMSampledSpans": "all services", "LLMMeterAbsent": "job genai-meter",
                  "LLMWatchdog": "Prometheus to Alertmanager"}  # no label to name: a fixed scope


@pytest.mark.parametrize("name", ["defaults", "example", "custom"])
def test_alert_metadata(name: str) -> None:
    config = configs()[name]
    runbooks = (REPO / "docs" / "runbooks.md").read_text(encoding="utf-8").lower()
    summaries: dict[str, set[str]] = {}
    for rule in rules_of(config):
        if "alert" not in rule:
            continue
        name_ = rule["alert"]
        assert re.fullmatch(r"LLM[A-Z][A-Za-z0-9]+", name_)
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url", "dashboard_url"}
        assert annotations["runbook_url"] == f"{config.alerts.runbook_base_url}#{name_.lower()}"
        assert annotations["dashboard_url"].startswith(f"{config.alerts.dashboard_base_url}/d/genai-meter-")
        assert re.search(r"\?viewPanel=\d+&", annotations["dashboard_url"])
        assert f"## {name_.lower()}" in runbooks, f"docs/runbooks.md has no section for {name_}"
        for label in SUBJECTS.get(name_, []):
            assert "{{ $labels." + label + " }}" in annotations["summary"], (name_, label, annotations["summary"])
        if name_ in FIXED_SUBJECTS:
            assert FIXED_SUBJECTS[name_] in annotations["summary"], name_
        assert name_ in SUBJECTS or name_ in FIXED_SUBJECTS, f"{name_}: say what its summary must name"
        summaries.setdefault(name_, set()).add(annotations["summary"])
    assert all(len(s) == 1 for s in summaries.values()), "summaries must be fixed per alert"
    assert {"LLMWatchdog", "LLMMeterDown", "LLMMeterAbsent", "LLMSpendSpike", "LLMErrorRateHigh",
            "LLMLatencyP95High", "LLMUnpricedModel", "LLMUnmeteredCalls", "LLMCacheTokensUnknown",
            "LLMDimensionOverflow", "LLMSeriesOverflow", "LLMSampledSpans", "LLMModelRequestsAnomaly",
            "LLMModelTokensAnomaly", "LLMModelCostAnomaly"} <= set(summaries)
    if "customer" in config.active_dimensions:
        assert {"LLMCustomerRequestsAnomaly", "LLMCustomerTokensAnomaly", "LLMCustomerCostAnomaly"} <= set(summaries)
    if config.budgets:
        assert {"LLMBudgetThresholdReached", "LLMBudgetExceeded", "LLMBudgetExhaustionForecast",
                "LLMBudgetLimitMissing"} <= set(summaries)


def test_dashboard_links_fill_the_subject() -> None:
    rules = {r["alert"]: r for r in rules_of(load_config(EXAMPLE)) if "alert" in r}
    assert rules["LLMCustomerCostAnomaly"]["annotations"]["dashboard_url"] == (
        "http://127.0.0.1:3000/d/genai-meter-usage?viewPanel=100&from=now-24h&to=now"
        "&var-customer={{ $labels.customer | urlquery }}")
    assert "&var-budget={{ $labels.budget | urlquery }}" in rules["LLMBudgetExceeded"]["annotations"]["dashboard_url"]


def test_anomaly_settings_reach_the_rules() -> None:
    config = parse_config({"alerts": {"anomaly_zscore": 4.5, "anomaly_min_requests_per_hour": 250,
                                      "anomaly_min_stddev_ratio": 0.2, "anomaly_min_stddev_usd": 2}})
    rules = {r["alert"]: r["expr"] for r in rules_of(config) if "alert" in r}
    assert "> 4.5" in rules["LLMModelRequestsAnomaly"] and ">= 250" in rules["LLMModelRequestsAnomaly"]
    assert "* 0.2" in rules["LLMCustomerCostAnomaly"] and ",\n  2\n)" in rules["LLMCustomerCostAnomaly"]
    no_customer = parse_config({"dimensions": {"customer": {"attributes": ["customer.id"], "enabled": False}}})
    names = {r["alert"] for r in rules_of(no_customer) if "alert" in r}
    assert "LLMCustomerCostAnomaly" not in names and "LLMModelCostAnomaly" in names


def test_threshold_severities() -> None:
    config = parse_config(CUSTOM)
    team = config.budgets[1]
    assert [threshold_severity(team, t) for t in (60, 70, 80, 90)] == ["info", "warning", "critical", "critical"]
    alerts = [r for r in rules_of(config) if r.get("labels", {}).get("budget") == "team-a" and "threshold" in r["labels"]]
    by_threshold = {r["labels"]["threshold"]: (r["alert"], r["labels"]["severity"]) for r in alerts}
    assert by_threshold == {"60": ("LLMBudgetThresholdReached", "info"), "70": ("LLMBudgetThresholdReached", "warning"),
                            "80": ("LLMBudgetThresholdReached", "critical"),
                            "90": ("LLMBudgetThresholdReached", "critical"),
                            "100": ("LLMBudgetExceeded", "critical"), "120": ("LLMBudgetExceeded", "critical")}
    default = load_config(EXAMPLE).budgets[0]
    assert [threshold_severity(default, t) for t in (75, 90, 95)] == ["info", "warning", "critical"]


def test_config_values_reach_the_rules() -> None:
    text = "\n".join(str(r) for r in rules_of(parse_config(CUSTOM)))
    assert "> 2.5" in text and "> 0.1" in text and "> 7.5" in text  # z-score, error rate, latency
    assert "time() + 19800" in text and "time() - 28800" in text  # +05:30 and -08:00 periods
    assert not re.search(r"\bllm_", text) and "acme_ai_budget_spend_usd_total" in text
    assert 'increase(acme_ai_budget_tokens_total{budget="team-a"}[6h])' in text  # week: 6h current rate
    assert '[6h:1m])' in text and ', 60, 21600)' in text  # over the time the spend took, 1 minute to 6 hours
    assert 'increase(acme_ai_budget_spend_usd_total{budget="daily"}[1h])' in text  # day: 1h


def test_budget_alerts_read_the_processor_counters() -> None:
    recording = {r["record"]: r["expr"] for r in rules_of(load_config(EXAMPLE)) if "record" in r}
    spend = recording["budget:llm_budget_spend_usd:period_to_date"]
    assert "increase(llm_budget_spend_usd_total[32d])" in spend
    assert "and on (budget, period) group by (budget, period) (llm_budget_spend_usd_total)" in spend
    assert 'max by (budget) (llm_budget_limit{unit="usd"})' in recording["budget:llm_budget_usage:ratio"]


def test_priced_models_list_the_catalog_and_the_overrides(tmp_path: Path) -> None:
    config = load_config(REPO / "tests" / "fixtures" / "prices" / "genai-meter.yaml")
    groups = build_rules(config)["genai-meter-priced-models.yaml"]["groups"]
    rules = {r["labels"]["provider"]: r for r in groups[0]["rules"]}
    assert {r["record"] for r in rules.values()} == {"provider_model:llm_priced_models:catalog"}
    assert '"model", "gpt-4.1", "", ""' in rules["openai"]["expr"]  # the catalog
    assert '"model", "llama-3.1-70b-ft", "", ""' in rules["self-hosted"]["expr"]  # the overrides
    assert {"anthropic", "aws.bedrock", "gcp.gemini", "mistral_ai"} <= set(rules)
    path = tmp_path / "priced.yaml"
    path.write_text(dump_yaml({"groups": groups}), encoding="utf-8")
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
