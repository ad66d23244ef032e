"""`model_key`: dated and undated names of one model share a key, on both sides of a comparison."""

from __future__ import annotations

import pytest

from genai_meter.reconcile import model_key
from genai_meter.reconcile.models import strip_date


@pytest.mark.parametrize(("provider", "dated", "undated"), [
    ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
    ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("openai", "gpt-4.1-2025-04-14", "gpt-4.1"),
    ("openai", "o3-2025-04-16", "o3"),
    ("openai", "gpt-4-0613", "gpt-4"),
    ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-0"),
    ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),
    ("openrouter", "openai/gpt-4.1-2025-04-14", "openai/gpt-4.1"),
    ("openai", "GPT-4o-2024-08-06", "gpt-4o"),
])
def test_dated_and_undated_names_share_a_key(provider: str, dated: str, undated: str) -> None:
    assert model_key(provider, dated) == model_key(provider, undated)
    assert model_key(provider, dated) != model_key(provider, "gpt-3.5-turbo")


def test_different_models_keep_different_keys() -> None:
    assert model_key("openai", "gpt-4o") != model_key("openai", "gpt-4o-mini")
    assert model_key("anthropic", "claude-sonnet-4-20250514") != model_key("anthropic", "claude-opus-4-20250514")


@pytest.mark.parametrize(("model", "key"), [
    ("acme-llm-2025-01-02", "acme-llm"),
    ("Acme-LLM-20250102", "acme-llm"),
    ("claude-custom@20240620", "claude-custom"),
    ("acme.llm-20250102-v1:0", "acme.llm"),
    ("acme-llm-1106", "acme-llm"),
    ("acme-llm-v2", "acme-llm-v2"),
    ("acme-llm-1400", "acme-llm-1400"),  # not a month and day
])
def test_models_the_catalog_does_not_know_lose_their_date(model: str, key: str) -> None:
    assert strip_date(model) == key
    assert model_key("self-hosted", model) == key


def test_no_model_is_no_key() -> None:
    assert model_key("openai", "") == "" and model_key("openai", "  ") == ""
