"""Anthropic Admin API reports -> provider lines, and Anthropic's token arithmetic.

Shapes (fixtures written from them):
- `GET /v1/organizations/usage_report/messages`: Anthropic API reference, "Get Messages Usage
  Report" (https://platform.claude.com/docs/en/api/admin-api/usage-cost/get-messages-usage-report):
  `{"data": [{"starting_at", "ending_at", "results": [{api_key_id, cache_creation
  {ephemeral_1h_input_tokens, ephemeral_5m_input_tokens}, cache_read_input_tokens, context_window,
  model, output_tokens, server_tool_use {web_search_requests}, service_tier, uncached_input_tokens,
  workspace_id}]}], "has_more", "next_page"}` (the reference's own example values are used);
  service_tier standard | batch | priority.
- `GET /v1/organizations/cost_report`: the reference's "Get Cost Report" / CostReport model
  (https://platform.claude.com/docs/en/api/admin/cost_report): results {amount: "Cost amount in
  lowest currency units (e.g. cents) as a decimal string. For example, "123.45" in "USD" represents
  $1.23" [sic: $1.2345], context_window, cost_type (tokens, web_search, code_execution), currency
  ("Currently always USD"), description, model, service_tier, token_type, workspace_id}.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from genai_meter.reconcile import Coverage, ReconcileError, read_export
from tests.reconcile.support import fixture, load, write_json

AUG1, AUG2 = date(2025, 8, 1), date(2025, 8, 2)


def test_usage_report_uncached_input_is_input_and_cache_writes_add_5m_and_1h() -> None:
    export = read_export(fixture("anthropic_usage.json"))  # a JSON list of two pages of one query
    sonnet, haiku, later = export.lines
    assert (sonnet.day, sonnet.provider, sonnet.model, sonnet.model_key) == (
        AUG1, "anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-0")
    # uncached_input_tokens exclude cache reads and writes: they are `input` as they are
    assert sonnet.tokens.as_dict() == {"input": 1500, "cache_read": 200, "cache_write": 1500, "output": 500,
                                       "reasoning": 0}
    assert sonnet.cache_write_1h == 1000  # of the 1500 written, 1000 for one hour, 500 for five minutes
    assert sonnet.tokens.input_total == 1500 + 200 + 1000 + 500
    assert sonnet.units == (("web_searches", 10),)
    assert (sonnet.project, sonnet.api_key_id, sonnet.service_tier, sonnet.batch) == (
        "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "apikey_01Rj2N8SVvo6BePZj99NhmiT", "default", False)
    assert sonnet.requests is None and sonnet.folded == ("reasoning",)  # the report counts no requests
    assert (haiku.service_tier, haiku.batch, haiku.units, haiku.project) == ("default", True, (), "")
    assert haiku.model_key == "claude-3-5-haiku-latest"
    assert (later.day, later.cache_write, later.cache_write_1h, later.units) == (AUG2, 11, 0, ())
    assert export.covers == {Coverage("anthropic", AUG1, "anthropic.usage.messages"),
                             Coverage("anthropic", AUG2, "anthropic.usage.messages")}


def test_cost_report_amounts_are_cents() -> None:
    export = read_export(fixture("anthropic_cost.json"))
    tokens, search = export.lines
    assert tokens.cost_pico == 1_234_500_000_000  # "123.45" cents = $1.2345
    assert (tokens.currency, tokens.model_key, tokens.line_item, tokens.service_tier, tokens.batch) == (
        "USD", "claude-sonnet-4-0", "Claude Sonnet 4 Usage - Input Tokens", "default", False)
    assert search.cost_pico == 1_000_000  # "0.0001" cents = $0.000001
    assert (search.model, search.line_item, search.service_tier, search.batch) == ("", "web_search", "", None)
    assert export.covers == {Coverage("anthropic", AUG1, "anthropic.cost")}


def test_other_server_tools_become_custom_units(tmp_path: Path) -> None:
    pages = load("anthropic_usage.json")
    pages[0]["data"][0]["results"][0]["server_tool_use"]["web_fetch_requests"] = 3  # type: ignore[index]
    lines = read_export(write_json(tmp_path, "tools.json", pages)).lines
    assert lines[0].units_dict == {"custom.web_fetch_requests": 3, "web_searches": 10}


@pytest.mark.parametrize(("result", "path", "message"), [
    (0, ("cache_creation",), "[0].data[0].results[0].cache_creation: missing"),
    (0, ("cache_creation", "ephemeral_1h_input_tokens"),
     "[0].data[0].results[0].cache_creation.ephemeral_1h_input_tokens: missing"),
    (1, ("uncached_input_tokens",), "[0].data[0].results[1].uncached_input_tokens: missing"),
    (1, ("output_tokens",), "[0].data[0].results[1].output_tokens: missing"),
    # the first result tells the report's kind: without its token count it is neither usage nor cost
    (0, ("uncached_input_tokens",), "[0].data[0].results[0]: neither a usage result (uncached_input_tokens) "
                                    "nor a cost result (amount)"),
])
def test_usage_report_missing_fields(tmp_path: Path, result: int, path: tuple[str, ...], message: str) -> None:
    pages = load("anthropic_usage.json")
    target = pages[0]["data"][0]["results"][result]  # type: ignore[index]
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    with pytest.raises(ReconcileError) as err:
        read_export(write_json(tmp_path, "bad.json", pages))
    assert str(err.value) == f"{tmp_path / 'bad.json'}: {message}"


def test_cost_amount_must_be_a_decimal(tmp_path: Path) -> None:
    report = load("anthropic_cost.json")
    report["data"][0]["results"][0]["amount"] = "12,34"  # type: ignore[index]
    with pytest.raises(ReconcileError) as err:
        read_export(write_json(tmp_path, "bad.json", report))
    assert str(err.value) == (f"{tmp_path / 'bad.json'}: data[0].results[0].amount: expected a decimal amount, "
                              "got '12,34'")
