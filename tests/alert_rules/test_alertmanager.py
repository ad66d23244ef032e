"""The example Alertmanager config: amtool accepts it, routes by severity, groups and inhibits by budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from genai_meter.alert_rules import build_alertmanager
from genai_meter.alert_rules.alertmanager import SLACK_EMAIL_EXAMPLE
from genai_meter.config import load_config
from tests.support.alertmanager import amtool

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def check(path: Path) -> None:
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_amtool_accepts_the_committed_config() -> None:
    check(COMMITTED)


def test_amtool_accepts_a_config_with_test_webhooks(tmp_path: Path) -> None:
    path = tmp_path / "am.yml"
    path.write_text(yaml.safe_dump(build_alertmanager(load_config(None), webhook_url="http://127.0.0.1:1/hook")))
    check(path)


def test_slack_and_email_example_is_valid(tmp_path: Path) -> None:
    """The commented Slack / e-mail block, uncommented into the critical receiver, is accepted."""
    lines = [line[2:] for line in SLACK_EMAIL_EXAMPLE.splitlines() if line.startswith("#    ")]
    extra = yaml.safe_load("\n".join(lines))
    config = build_alertmanager(load_config(None))
    critical = next(r for r in config["receivers"] if r["name"] == "critical")
    critical.update(extra)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for receiver in ("slack_configs", "email_configs"):
        for item in critical[receiver]:
            for key in ("api_url_file", "auth_password_file"):
                if key in item:
                    target = secrets / Path(item[key]).name
                    target.write_text("https://hooks.slack.com/services/T/B/X\n" if key == "api_url_file" else "pw\n")
                    item[key] = str(target)
    path = tmp_path / "am.yml"
    path.write_text(yaml.safe_dump(config))
    check(path)
    assert SLACK_EMAIL_EXAMPLE in COMMITTED.read_text()


@pytest.mark.parametrize(("labels", "receiver"), [
    ({"alertname": "LLMBudgetExceeded", "budget": "acme", "severity": "critical"}, "critical"),
    ({"alertname": "LLMBudgetThresholdReached", "budget": "acme", "severity": "warning"}, "warning"),
    ({"alertname": "LLMBudgetThresholdReached", "budget": "acme", "severity": "info"}, "info"),
    ({"alertname": "LLMMeterDown", "severity": "critical"}, "critical"),
    ({"alertname": "LLMErrorRateHigh", "severity": "warning"}, "warning"),
    ({"alertname": "LLMCacheTokensUnknown", "severity": "info"}, "info"),
    ({"alertname": "LLMWatchdog", "severity": "info"}, "watchdog"),
    ({"alertname": "SomethingElse"}, "default"),
])
def test_routes(labels: dict[str, str], receiver: str) -> None:
    result = amtool("config", "routes", "test", f"--config.file={COMMITTED}",
                    *(f"{k}={v}" for k, v in labels.items()))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receiver


def test_budget_grouping_repeat_and_inhibition() -> None:
    config = yaml.safe_load(COMMITTED.read_text())
    budget_route = next(r for r in config["route"]["routes"] if r.get("matchers") == ['budget=~".+"'])
    assert budget_route["group_by"] == ["budget"] and budget_route["repeat_interval"] == "24h"
    inhibit = config["inhibit_rules"]
    by_source = {tuple(rule["source_matchers"]): rule for rule in inhibit}
    critical = by_source[('severity="critical"', 'budget=~".+"')]
    assert critical["equal"] == ["budget"] and 'budget=~".+"' in critical["target_matchers"]
    warning = by_source[('severity="warning"', 'budget=~".+"')]
    assert warning["target_matchers"] == ['severity="info"', 'budget=~".+"'] and warning["equal"] == ["budget"]
    exceeded = by_source[('alertname="LLMBudgetExceeded"',)]
    assert exceeded["equal"] == ["budget"]
    # Severity inhibition is limited to budget alerts, so a critical LLMMeterDown (no budget label) does
    # not silence every warning without one (missing labels count as equal in Alertmanager).
    for rule in inhibit:
        if any(m.startswith("severity=") for m in rule["source_matchers"]):
            assert 'budget=~".+"' in rule["source_matchers"] and 'budget=~".+"' in rule["target_matchers"]


def test_webhooks_follow_the_given_url() -> None:
    config = build_alertmanager(load_config(None), webhook_url="http://127.0.0.1:5001/base/")
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in config["receivers"]}
    assert urls == {name: f"http://127.0.0.1:5001/base/{name}" for name in
                    ("default", "critical", "warning", "info", "watchdog")}
