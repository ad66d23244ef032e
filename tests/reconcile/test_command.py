"""`genai-meter reconcile parse FILE... [--json] [--mapping NAME]` (fixtures: see the reader tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genai_meter.cli import main
from tests.reconcile.support import fixture, load, write_json


def test_parse_prints_a_table_with_the_covered_days(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", "parse", str(fixture("openai_completions.json")),
                 str(fixture("anthropic_cost.json"))]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:6] == ["day", "provider", "model", "model_key", "project", "api_key"]
    rows = [line.split() for line in out[1:6]]
    assert rows[0][:4] == ["2025-08-01", "openai", "gpt-4o-2024-08-06", "gpt-4o"]
    assert "500*" in rows[0]  # output also counts reasoning tokens
    assert "1.2345" in rows[2] and "USD" in rows[2]
    assert out[5] == (f"{fixture('openai_completions.json')}: 2 lines, covers 2 provider-day reports "
                      "(2025-08-01..2025-08-02)")
    assert out[-1].startswith("* the class also counts tokens")


def test_parse_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", "parse", "--json", str(fixture("anthropic_usage.json"))]) == 0
    (body,) = json.loads(capsys.readouterr().out)
    assert body["file"] == str(fixture("anthropic_usage.json"))
    assert body["covers"] == [{"provider": "anthropic", "day": "2025-08-01", "kind": "anthropic.usage.messages"},
                              {"provider": "anthropic", "day": "2025-08-02", "kind": "anthropic.usage.messages"}]
    first = body["lines"][0]
    assert first["tokens"] == {"input": 1500, "cache_read": 200, "cache_write": 1500, "output": 500, "reasoning": 0}
    assert (first["cache_write_1h"], first["units"], first["requests"], first["cost"], first["batch"]) == (
        1000, {"web_searches": 10}, None, None, False)
    assert first["source"] == {"file": str(fixture("anthropic_usage.json")), "kind": "anthropic.usage.messages"}


def test_parse_costs_json_keeps_exact_money(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", "parse", "--json", str(fixture("openai_costs.json"))]) == 0
    lines = json.loads(capsys.readouterr().out)[0]["lines"]
    assert [(line["cost"], line["cost_pico"], line["currency"]) for line in lines] == [
        ("0.060000000000", 60_000_000_000, "USD"), ("1.234567890123", 1_234_567_890_123, "USD"),
        ("-0.500000000000", -500_000_000_000, "USD")]


def test_a_bad_file_is_one_line_on_stderr_and_nothing_on_stdout(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    page = load("openai_completions.json")
    del page["data"][0]["results"][1]["input_tokens"]  # type: ignore[index]
    bad = write_json(tmp_path, "bad.json", page)
    assert main(["reconcile", "parse", str(fixture("openai_costs.json")), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"genai-meter: {bad}: data[0].results[1].input_tokens: missing\n"


def test_parse_with_a_mapping_from_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "genai-meter.yaml"
    config.write_text("""
reconcile:
  mappings:
    azure:
      provider: azure.ai.openai
      columns: {day: Date, model: Meter, input: Input tokens, cache_read: Cached input tokens,
                output: Output tokens, requests: Requests, cost: Cost, currency: Currency}
      input_includes_cache: true
""", encoding="utf-8")
    assert main(["reconcile", "parse", "--config", str(config), "--mapping", "azure", "--json",
                 str(fixture("azure_costs.csv"))]) == 0
    lines = json.loads(capsys.readouterr().out)[0]["lines"]
    assert [(line["provider"], line["tokens"]["input"], line["non_usd"], line["source"]["kind"]) for line in lines] == [
        ("azure.ai.openai", 10000, True, "csv:azure"), ("azure.ai.openai", 6000, True, "csv:azure")]
