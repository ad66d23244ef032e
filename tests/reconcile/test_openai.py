"""OpenAI Admin API pages -> provider lines, and OpenAI's token arithmetic.

Shapes (fixtures written from them):
- `GET /v1/organization/usage/completions` page, bucket and `organization.usage.completions.result`
  (input_tokens, output_tokens, input_cached_tokens, input_audio_tokens, output_audio_tokens,
  num_model_requests, project_id, user_id, api_key_id, model, batch, service_tier; has_more,
  next_page): OpenAI API reference, "Completions usage object"
  (https://platform.openai.com/docs/api-reference/usage/completions_object; the Python SDK reference
  https://developers.openai.com/api/reference/python/resources/admin/subresources/organization/subresources/usage/
  lists `service_tier: "When group_by=service_tier ..."`). Earlier schema: "input_tokens: text input
  tokens used, including cached tokens"; "input_audio_tokens: audio input tokens used, including
  cached tokens".
- The current schema of the same object (OpenAPI spec as generated into client libraries, e.g.
  ExOpenAI.Components.UsageCompletionsResult): input_tokens "including cached and cache-write tokens
  ... text, audio, and image"; input_text_tokens "uncached text input tokens, excluding cache-write
  tokens"; input_cached_{text,audio,image}_tokens, input_cache_write_tokens, input_uncached_tokens,
  input_image_tokens, output_{text,audio,image}_tokens.
- Embeddings, images (images, size, source), audio speeches (characters), audio transcriptions
  (seconds) results: the same SDK reference page.
- `GET /v1/organization/costs`, `organization.costs.result` (amount {value, currency: lowercase ISO
  4217}, line_item, project_id): the same reference. The "MODEL, WHAT" line item form
  ("gpt-4o-2024-08-06, input") is what the costs endpoint answers with group_by=line_item.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from genai_meter.reconcile import Coverage, ReconcileError, read_export
from tests.reconcile.support import fixture, load, write_json

AUG1, AUG2 = date(2025, 8, 1), date(2025, 8, 2)


def test_completions_earlier_schema_subtracts_cached_from_input() -> None:
    export = read_export(fixture("openai_completions.json"))
    first, second = export.lines
    assert (first.day, first.provider, first.model, first.model_key) == (AUG1, "openai", "gpt-4o-2024-08-06", "gpt-4o")
    # input_tokens 1000 include the 800 cached: 200 uncached
    assert first.tokens.as_dict() == {"input": 200, "cache_read": 800, "cache_write": 0, "output": 500, "reasoning": 0}
    assert first.tokens.input_total == 1000
    assert (first.requests, first.project, first.api_key_id, first.service_tier, first.batch) == (
        5, "proj_abc", "key_123", "default", False)
    assert first.folded == ("reasoning",) and first.cost_pico is None and first.measures == ("usage",)
    assert second.input == 141201 and second.cache_read == 0 and second.output == 9756
    assert second.units == (("input_audio_tokens", 120), ("output_audio_tokens", 64))
    assert (second.service_tier, second.batch, second.model_key) == ("flex", True, "gpt-4o-mini")
    assert first.source.kind == "openai.usage.completions" and first.source.file.endswith("openai_completions.json")
    # the empty bucket of Aug 2 is still a covered day: the provider reports nothing that day
    assert export.covers == {Coverage("openai", AUG1, "openai.usage.completions"),
                             Coverage("openai", AUG2, "openai.usage.completions")}
    assert export.pairs() == {("openai", AUG1), ("openai", AUG2)}


def test_completions_current_schema_splits_modalities_and_cache_writes() -> None:
    (line,) = read_export(fixture("openai_completions_current.json")).lines
    assert line.tokens.as_dict() == {"input": 6000, "cache_read": 2000, "cache_write": 700, "output": 2500,
                                     "reasoning": 0}
    assert line.units_dict == {"input_audio_tokens": 500, "cache_audio_read_tokens": 400, "input_image_tokens": 300,
                               "cache_image_read_tokens": 100, "output_audio_tokens": 400, "output_image_tokens": 100}
    # every input token lands in exactly one class or unit
    assert line.tokens.input_total + sum(v for k, v in line.units if not k.startswith("output")) == 10000
    assert line.tokens.output_total + line.units_dict["output_audio_tokens"] + line.units_dict["output_image_tokens"] \
        == 3000
    assert (line.service_tier, line.batch, line.project, line.requests) == ("priority", None, "", 12)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("input_cached_tokens", 1001, "input_cached_tokens (1001) exceed input_tokens (1000)"),
])
def test_earlier_schema_inconsistent_counts(tmp_path: Path, field: str, value: int, message: str) -> None:
    page = load("openai_completions.json")
    page["data"][0]["results"][0][field] = value  # type: ignore[index]
    with pytest.raises(ReconcileError) as err:
        read_export(write_json(tmp_path, "bad.json", page))
    assert str(err.value) == f"{tmp_path / 'bad.json'}: data[0].results[0]: inconsistent counts: {message}"


@pytest.mark.parametrize(("field", "value", "names"), [
    ("input_text_tokens", 5999, "input_text_tokens + input_audio_tokens + input_image_tokens"),
    ("input_uncached_tokens", 6801, "input_uncached_tokens (6801)"),
    ("input_cached_text_tokens", 1, "input_cached_text_tokens + input_cached_audio_tokens"),
    ("output_text_tokens", 2499, "output_text_tokens + output_audio_tokens + output_image_tokens"),
    ("input_cache_write_tokens", 9000, "input_cached_tokens (2500) + input_cache_write_tokens (9000) exceed"),
])
def test_current_schema_identities_are_checked(tmp_path: Path, field: str, value: int, names: str) -> None:
    page = load("openai_completions_current.json")
    page["data"][0]["results"][0][field] = value  # type: ignore[index]
    with pytest.raises(ReconcileError, match="data\\[0\\].results\\[0\\]: inconsistent counts") as err:
        read_export(write_json(tmp_path, "bad.json", page))
    assert names in str(err.value)


def test_costs_keep_the_exact_decimal_and_read_the_model_from_the_line_item() -> None:
    export = read_export(fixture("openai_costs.json"))
    inp, out, credit = export.lines
    assert (inp.cost_pico, inp.currency, inp.model_key, inp.line_item) == (
        60_000_000_000, "USD", "gpt-4o", "gpt-4o-2024-08-06, input")
    # 1.2345678901234567 USD as written, half-even to 10^-12 (a float would not keep the digits)
    assert out.cost_pico == 1_234_567_890_123
    assert (credit.cost_pico, credit.model, credit.project) == (-500_000_000_000, "", "")
    assert inp.measures == ("cost",) and not inp.non_usd and inp.requests is None
    assert export.covers == {Coverage("openai", AUG1, "openai.costs")}


def test_other_usage_endpoints() -> None:
    embeddings = read_export(fixture("openai_embeddings.jsonl"))  # JSON lines: one page per line
    assert [(line.day, line.input, line.requests, line.source.kind) for line in embeddings.lines] == [
        (AUG1, 16, 2, "openai.usage.embeddings"), (AUG2, 32, 3, "openai.usage.embeddings")]
    assert embeddings.lines[0].source.file.endswith("openai_embeddings.jsonl")
    (image,) = read_export(fixture("openai_images.json")).lines
    assert (image.units, image.line_item, image.requests) == ((("custom.images", 2),), "1024x1024, image.generation", 2)
    (speech,) = read_export(fixture("openai_speeches.json")).lines
    assert speech.units == (("input_characters", 45),) and speech.model_key == "tts-1"
    (transcription,) = read_export(fixture("openai_transcriptions.json")).lines
    assert transcription.units == (("input_audio_seconds", 20),)


def test_service_tier_names_are_normalized(tmp_path: Path) -> None:
    page = load("openai_completions.json")
    page["data"][0]["results"][0]["service_tier"] = "auto"  # type: ignore[index]
    page["data"][0]["results"][1]["service_tier"] = "Scale"  # type: ignore[index]
    lines = read_export(write_json(tmp_path, "tiers.json", page)).lines
    assert [line.service_tier for line in lines] == ["default", "scale"]
