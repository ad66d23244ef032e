"""OpenRouter -> provider lines: the activity API and the activity CSV export.

Shapes (fixtures written from them):
- `GET /api/v1/activity` (management key; `date` filter, last 30 completed UTC days): OpenRouter API
  reference "Get user activity grouped by endpoint"
  (https://openrouter.ai/docs/api/api-reference/analytics/get-user-activity) and its ActivityItem
  model (https://openrouter.ai/docs/client-sdks/python/components/activityitem): date, model,
  model_permaslug, endpoint_id, provider_name, usage (USD of OpenRouter credits),
  byok_usage_inference (USD, external credits), requests, prompt_tokens, completion_tokens,
  reasoning_tokens (the reference's example item is the first fixture item).
- The activity CSV export (Activity page -> export CSV), one row per generation. OpenRouter's guide
  ("Activity Export") documents the export and that "reasoning tokens are included in completion
  tokens for billing", not the column names; the columns used here (generation_id, created_at
  "YYYY-MM-DD HH:MM:SS.fff" UTC, cost_total, cost_web_search, cost_cache, cost_file_processing,
  byok_usage_inference, tokens_prompt, tokens_completion, tokens_reasoning, tokens_cached,
  model_permaslug, provider_name, ...) are those of real exports as read by public analysis scripts
  (e.g. github.com/CodexClawd/codexclawd skills/openrouter-analyzer/scripts/analyze.py).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from genai_meter.reconcile import Coverage, ReconcileError, read_export
from tests.reconcile.support import fixture, load, write_json


def test_activity_items_reasoning_is_inside_completion_and_cache_is_folded_into_prompt() -> None:
    export = read_export(fixture("openrouter_activity.json"))
    gpt, claude = export.lines
    assert (gpt.day, gpt.provider, gpt.model, gpt.model_key, gpt.served_by) == (
        date(2025, 8, 24), "openrouter", "openai/gpt-4.1", "openai/gpt-4.1", "OpenAI")
    assert gpt.tokens.as_dict() == {"input": 50, "cache_read": 0, "cache_write": 0, "output": 100, "reasoning": 25}
    assert gpt.tokens.output_total == 125 and gpt.folded == ("cache_read", "cache_write")
    assert (gpt.requests, gpt.cost_pico, gpt.currency, gpt.line_item) == (5, 15_000_000_000, "USD", "")
    assert gpt.measures == ("usage", "cost")
    assert (claude.line_item, claude.cost_pico) == ("byok", 200_000_000)  # calls on the user's own key
    assert export.covers == {Coverage("openrouter", date(2025, 8, 24), "openrouter.activity")}


def test_activity_reasoning_above_completion_is_an_error(tmp_path: Path) -> None:
    response = load("openrouter_activity.json")
    response["data"][1]["reasoning_tokens"] = 41  # type: ignore[index]
    with pytest.raises(ReconcileError) as err:
        read_export(write_json(tmp_path, "bad.json", response))
    assert str(err.value) == (f"{tmp_path / 'bad.json'}: data[1]: inconsistent counts: reasoning tokens (41) exceed "
                              "completion tokens (40)")


def test_csv_export_sums_generations_per_day_and_model() -> None:
    export = read_export(fixture("openrouter_export.csv"))
    aug1, aug2 = export.lines
    # 23:59:59.999 belongs to Aug 1, 00:00:00.001 to Aug 2 (UTC)
    assert (aug1.day, aug1.requests, aug2.day, aug2.requests) == (date(2025, 8, 1), 2, date(2025, 8, 2), 1)
    assert aug1.tokens.as_dict() == {"input": 1800, "cache_read": 200, "cache_write": 0, "output": 350,
                                     "reasoning": 100}
    assert aug1.tokens.input_total == 1200 + 800 and aug1.tokens.output_total == 300 + 150
    assert aug1.cost_pico == 3_750_000_000  # 0.00125 + 0.0025, exact
    assert (aug1.model, aug1.model_key, aug1.served_by, aug1.folded) == (
        "openai/gpt-4.1-2025-04-14", "openai/gpt-4.1", "OpenAI", ("cache_write",))
    assert export.covers == {Coverage("openrouter", date(2025, 8, 1), "openrouter.csv"),
                             Coverage("openrouter", date(2025, 8, 2), "openrouter.csv")}


@pytest.mark.parametrize(("row", "message"), [
    ("gen-x,2025-08-01 10:00:00.000,0.1,0,0,0,0,abc,1,0,0,m,P,a,stop,1,1", "row 2, column tokens_prompt: expected a "
                                                                          "whole number, got 'abc'"),
    ("gen-x,yesterday,0.1,0,0,0,0,1,1,0,0,m,P,a,stop,1,1", "row 2, column created_at: expected a date (ISO 8601), "
                                                           "got 'yesterday'"),
    ("gen-x,2025-08-01 10:00:00.000,,0,0,0,0,1,1,0,0,m,P,a,stop,1,1", "row 2, column cost_total: missing"),
    ("gen-x,2025-08-01 10:00:00.000,0.1,0,0,0,0,10,1,0,11,m,P,a,stop,1,1", "row 2, column tokens_cached: "
                                                                           "inconsistent counts"),
])
def test_csv_export_bad_cells(tmp_path: Path, row: str, message: str) -> None:
    header = fixture("openrouter_export.csv").read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "export.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    with pytest.raises(ReconcileError) as err:
        read_export(path)
    assert str(err.value).startswith(f"{path}: {message}")
