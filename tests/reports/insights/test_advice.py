"""Savings advice proposes comparable models only (the same family's smaller ones, or the configured
equivalents), states its assumption, and lists a saving only when it reaches the thresholds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask.testing import FlaskClient

from genai_meter.config import AdviceConfig, Config, ModelSwitchConfig
from genai_meter.reports.insights.families import size_of, smaller_in_family
from genai_meter.reports.service.app import create_app
from tests.reports.conftest import NOW_NS, auth

LOW = AdviceConfig(min_saving_usd=Decimal("0.01"), min_saving_share=Decimal("0.10"))


def _advice(ledger: tuple, advice: AdviceConfig, query: str = "") -> dict:
    config, _, reader = ledger
    assert isinstance(config, Config) and reader is not None
    config = config.model_copy(update={"reports": config.reports.model_copy(update={"advice": advice})})
    app = create_app(config, reader, clock=lambda: NOW_NS)
    response = app.test_client().get(f"/api/v1/recommendations{query}", headers=auth())
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


@pytest.mark.parametrize(("model", "candidate", "comparable"), [
    ("gpt-4o", "gpt-4o-mini", True), ("gpt-4o", "gpt-oss-20b", False), ("gpt-4o", "gpt-4.1-nano", False),
    ("gpt-4o", "gpt-4o-mini-tts", False), ("gpt-4o", "gpt-4o-mini-realtime-preview", False),
    ("gpt-4o-2024-08-06", "gpt-4o-mini", True), ("gpt-4.1-mini", "gpt-4.1-nano", True), ("gpt-4.1-mini", "gpt-4.1", False),
    ("claude-sonnet-4-5", "claude-haiku-4-5", True), ("claude-sonnet-4-5", "claude-3-haiku", False),
    ("claude-opus-4-1", "claude-sonnet-4-1", True), ("gemini-2.5-pro", "gemini-2.5-flash-lite", True),
    ("gemini-2.5-flash-lite", "gemini-2.5-flash", False), ("llama-3.1-70b-instruct", "llama-3.1-8b-instruct", True),
    ("llama-3.1-70b-instruct", "llama-3.2-3b-instruct", False), ("o3", "o3-mini", True), ("o3", "o4-mini", False),
])
def test_families(model: str, candidate: str, comparable: bool) -> None:
    assert smaller_in_family(model, candidate) is comparable, (size_of(model), size_of(candidate))


def test_only_same_family_switches_with_assumptions(ledger: tuple) -> None:
    body = _advice(ledger, LOW)
    cheaper = body["cheaper_models"]
    proposed = {(i["model"], a["model"]) for i in cheaper for a in i["alternatives"]}
    assert ("gpt-4o", "gpt-4o-mini") in proposed and ("claude-sonnet-4-5", "claude-haiku-4-5") in proposed
    for item in cheaper:
        for alt in item["alternatives"]:
            assert alt["basis"] == "same_family" and smaller_in_family(item["model"], alt["model"])
            assert alt["model"] in alt["assumption"] and "family" in alt["assumption"]
        assert item["assumption"] == item["alternatives"][0]["assumption"]
        assert Decimal(item["saving_usd"]) >= Decimal("0.01") and Decimal(item["saving_pct"]) >= 10
        assert Decimal(item["cost_usd"]) - Decimal(item["alternatives"][0]["cost_usd"]) == Decimal(item["saving_usd"])
        assert item["query"].startswith("/api/v1/reports/detailed?range=30d&feature=")
    assert not [i for i in cheaper if i["model"] == "text-embedding-3-large"], "embeddings only from the config"
    assert not any("oss" in a for _, a in proposed)


def test_configured_equivalents(ledger: tuple) -> None:
    switch = ModelSwitchConfig(provider="openai", model="text-embedding-3-large", alternatives=["text-embedding-3-small"],
                               assumption="our search index is re-embedded nightly")
    body = _advice(ledger, LOW.model_copy(update={"equivalents": [switch], "same_family": False}))
    items = body["cheaper_models"]
    assert items and {i["model"] for i in items} == {"text-embedding-3-large"}
    for item in items:
        assert item["alternatives"][0]["model"] == "text-embedding-3-small"
        assert item["basis"] == "configured" and item["assumption"] == "our search index is re-embedded nightly"


def test_thresholds_leave_out_small_savings(ledger: tuple) -> None:
    low = _advice(ledger, LOW)
    savings = sorted(Decimal(i["saving_usd"]) for i in low["cheaper_models"] + low["prompt_cache"])
    assert savings and savings[0] > 0
    cut = savings[len(savings) // 2]
    high = _advice(ledger, LOW.model_copy(update={"min_saving_usd": cut}))
    kept = [Decimal(i["saving_usd"]) for i in high["cheaper_models"] + high["prompt_cache"]]
    assert kept and all(s >= cut for s in kept) and len(kept) < len(savings)
    none = _advice(ledger, LOW.model_copy(update={"min_saving_usd": Decimal("1000000")}))
    assert none["cheaper_models"] == [] and none["prompt_cache"] == []
    share = _advice(ledger, LOW.model_copy(update={"min_saving_share": Decimal("0.99")}))
    assert all(Decimal(i["saving_pct"]) >= 99 for i in share["cheaper_models"] + share["prompt_cache"])


def test_cache_advice_is_real_and_never_zero(ledger: tuple) -> None:
    body = _advice(ledger, LOW)
    cache = body["prompt_cache"]
    assert cache, "gpt-4o-mini traffic reads little from its cache"
    for item in cache:
        assert Decimal(item["saving_usd"]) > 0
        assert Decimal(item["cache_hit_ratio"]) < Decimal(item["target_hit_ratio"])
        assert "cacheable prefix" in item["assumption"]
    unpriced = body["unpriced_models"]
    assert [(u["provider"], u["model"]) for u in unpriced] == [("openai", "mystery-model-x")]
    assert unpriced[0]["calls"] == 100 and "saving_usd" not in unpriced[0]


def test_advice_follows_its_traffic(client: FlaskClient, ledger: tuple) -> None:
    item = _advice(ledger, LOW)["cheaper_models"][0]
    follow = client.get(item["query"], headers=auth()).get_json()
    assert follow["tables"]["totals"]["rows"][0]["calls"] == item["calls"]
