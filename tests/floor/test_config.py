"""The config model: defaults with no file, and errors that name the file, the key and the expectation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from genai_meter.config import CONFIG_ENV, Config, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "genai-meter.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_gives_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    config = load_config()
    assert config == Config()
    assert list(config.active_dimensions) == ["customer", "feature", "organization", "project"]
    assert config.metric_prefix == "llm"


def test_env_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "metric_prefix: acme_llm\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    config = load_config()
    assert config.metric_prefix == "acme_llm"
    assert config.source_path == path.resolve()


def test_design_example_parses(tmp_path: Path) -> None:
    path = write(tmp_path, """
dimensions:
  customer: {attributes: [customer.id, tenant.id], max_values: 1000}
  user:     {attributes: [enduser.id, user.id], max_values: 500}
  feature:  {attributes: [feature.id, app.feature]}
  project:  {attributes: [project.id], resource: true}
pricing:
  overrides: prices.yaml
  currency: {code: EUR, per_usd: "0.92"}
budgets:
  - {name: org-monthly, period: month, limit_usd: 5000}
  - {name: acme, match: {customer: acme}, period: month, limit_usd: 500}
  - {name: search-tokens, match: {feature: search}, period: day, limit_tokens: 2000000}
alerts: {spend_spike_zscore: 3, error_rate: 0.05, latency_p95_seconds: 20}
prometheus_url: http://127.0.0.1:9090
""")
    config = load_config(path)
    assert config.pricing.currency.per_usd == Decimal("0.92")
    assert config.resolve_path(config.pricing.overrides) == tmp_path.resolve() / "prices.yaml"
    assert [b.name for b in config.budgets] == ["org-monthly", "acme", "search-tokens"]
    assert config.budgets[2].unit == "tokens" and config.budgets[2].limit == Decimal(2000000)
    assert list(config.active_dimensions) == ["customer", "feature", "project", "user"]


@pytest.mark.parametrize(
    ("text", "key", "expectation"),
    [
        ("dimensions:\n  customer: {attributes: [customer.id], max_values: lots}\n",
         "dimensions.customer.max_values", "valid integer"),
        ("dimensions:\n  customer: {attributes: [customer.id], maxvalues: 3}\n",
         "dimensions.customer.maxvalues", "unknown key"),
        ("budgets:\n  - {name: b, period: fortnight, limit_usd: 5}\n", "budgets.0.period", "'day', 'week' or 'month'"),
        ("budgets:\n  - {name: b, period: month}\n", "budgets.0", "exactly one of limit_usd or limit_tokens"),
        ("budgets:\n  - {name: b, match: {tenant: x}, limit_usd: 5}\n", "(top level)", "unknown label 'tenant'"),
        ("dimensions:\n  instance: {attributes: [host.name]}\n", "dimensions", "clashes"),
        ("pricing: {currency: {code: EUR, per_usd: -1}}\n", "pricing.currency.per_usd", "greater than 0"),
        ("metric_prefix: 9bad\n", "metric_prefix", "should match pattern"),
        ("alerts: {error_rate: 2}\n", "alerts.error_rate", "less than or equal to 1"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, key: str, expectation: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert f"  {key}:" in message, message
    assert expectation in message, message


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "dimensions:\n  customer: {attributes: [a\n")
    with pytest.raises(ConfigError, match=rf"^{path}: line \d+ not valid YAML"):
        load_config(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_cli_reports_config_error_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from genai_meter.cli import main

    path = write(tmp_path, "limits: {max_series_per_metric: 1}\n")
    assert main(["price", "openai", "gpt-4o", "--input", "1", "--output", "1", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "limits.max_series_per_metric" in err
