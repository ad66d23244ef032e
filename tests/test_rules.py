"""Prometheus rules: promtool check on every generated file (several configs), the promtool unit
tests in tests/rules/ (every alert with a firing and a must-not-fire case), naming and metadata."""

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

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "deploy" / "genai-meter.yaml"
UNIT_TESTS = sorted((REPO / "tests" / "rules").glob("*.test.yaml"))
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
    assert len(paths) == 2
    result = promtool("check", "rules", *paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests() -> None:
    """tests/rules/*.test.yaml against the committed rules (generated from deploy/genai-meter.yaml)."""
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
        assert set(annotations) == {"summary", "description", "runbook_url"}
        assert annotations["runbook_url"] == f"{config.alerts.runbook_base_url}#{name_.lower()}"
        assert f"## {name_.lower()}" in runbooks, f"docs/runbooks.md has no section for {name_}"
        assert "{{" not in annotations["summary"]
        summaries.setdefault(name_, set()).add(annotations["summary"])
    assert all(len(s) == 1 for s in summaries.values()), "summaries must be fixed per alert"
    assert {"LLMWatchdog", "LLMMeterDown", "LLMMeterAbsent", "LLMSpendSpike", "LLMErrorRateHigh",
            "LLMLatencyP95High", "LLMUnpricedModel", "LLMUnmeteredCalls", "LLMCacheTokensUnknown",
            "LLMDimensionOverflow", "LLMSeriesOverflow", "LLMSampledSpans"} <= set(summaries)
    if config.budgets:
        assert {"LLMBudgetThresholdReached", "LLMBudgetExceeded", "LLMBudgetExhaustionForecast",
                "LLMBudgetLimitMissing"} <= set(summaries)


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
    assert 'rate(acme_ai_budget_tokens_total{budget="team-a"}[6h])' in text  # week: 6h current rate
    assert 'rate(acme_ai_budget_spend_usd_total{budget="daily"}[1h])' in text  # day: 1h


def test_budget_alerts_read_the_processor_counters() -> None:
    recording = {r["record"]: r["expr"] for r in rules_of(load_config(EXAMPLE)) if "record" in r}
    spend = recording["budget:llm_budget_spend_usd:period_to_date"]
    assert "increase(llm_budget_spend_usd_total[32d])" in spend
    assert "and on (budget, period) group by (budget, period) (llm_budget_spend_usd_total)" in spend
    assert 'max by (budget) (llm_budget_limit{unit="usd"})' in recording["budget:llm_budget_usage:ratio"]
