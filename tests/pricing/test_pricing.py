"""Pricing: catalog lookups, overrides, effective dates, tiers, currency, and the genai-prices conversion.

Expected costs are worked out by hand from published prices, written as literals here (the values
are those of the genai-prices 0.2.3 bundled data, cited per test); none is computed by the code
under test. All costs are exact Decimals, so equality is exact.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import threading
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest
from genai_prices.data_snapshot import get_snapshot

from genai_meter.config import Config, ConfigError, CurrencyConfig, load_config, parse_config
from genai_meter.contract import COST_TYPES
from genai_meter.pricing import PROVIDER_MAP, PriceBook, load_overrides, parse_overrides, to_genai_usage
from genai_meter.pricing.book import to_ns
from genai_meter.records import Cost, LLMCall, TokenCounts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prices"
NOV_2026 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
D = Decimal


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


@pytest.fixture(scope="module")
def overridden() -> PriceBook:
    """The catalog plus tests/fixtures/prices/overrides.yaml, through a real config file (EUR display)."""
    return PriceBook.from_config(load_config(FIXTURES / "genai-meter.yaml"))


def tokens(input: int = 0, cache_read: int = 0, cache_write: int = 0, output: int = 0, reasoning: int = 0) -> TokenCounts:
    return TokenCounts(input=input, cache_read=cache_read, cache_write=cache_write, output=output, reasoning=reasoning)


def call(provider: str, model: str, counts: TokenCounts, at: datetime, *, cache_write_1h: bool = False) -> LLMCall:
    return LLMCall(service="checkout", environment="prod", provider=provider, model=model, operation="chat",
                   status="ok", error_type="", duration_s=1.0, ttft_s=None, tokens=counts, end_ns=to_ns(at),
                   cache_write_1h=cache_write_1h)


def priced(book: PriceBook, provider: str, model: str, counts: TokenCounts, at: datetime = NOV_2026,
           *, cache_write_1h: bool = False) -> Cost:
    cost = book.price(provider, model, counts, at, cache_write_1h=cache_write_1h)
    assert cost is not None, f"{provider}/{model} should be priced"
    return cost


# -- catalog -----------------------------------------------------------------------------------------


def test_openai_with_cached_input(book: PriceBook) -> None:
    # genai-prices openai/gpt-4o: input $2.50/M, cached input $1.25/M, output $10/M
    cost = priced(book, "openai", "gpt-4o-2024-08-06", tokens(input=1_000, cache_read=3_000, output=500))
    assert cost.by_type == {
        "input": D("0.0025"),  # 1,000 x 2.50 / 1M
        "cache_read": D("0.00375"),  # 3,000 x 1.25 / 1M
        "cache_write": D(0),
        "output": D("0.005"),  # 500 x 10 / 1M
        "reasoning": D(0),
        "request": D(0),
    }
    assert cost.total == D("0.01125")
    assert cost.unit_prices == {"input": D("2.5"), "cache_read": D("1.25"), "output": D("10")}
    assert cost.price_source == "genai-prices"
    assert cost.price_entry == "openai/gpt-4o"
    assert cost.price_version == genai_prices.__version__


@pytest.mark.parametrize(("one_hour", "write_cost", "write_rate"), [
    (False, D("0.015"), D("3.75")),  # 4,000 x 3.75 / 1M (5-minute write rate)
    (True, D("0.024"), D("6")),  # 4,000 x 6 / 1M (1-hour write rate)
])
def test_anthropic_cache_reads_and_writes(book: PriceBook, one_hour: bool, write_cost: Decimal,
                                          write_rate: Decimal) -> None:
    # genai-prices anthropic/claude-sonnet-4-0: input $3/M, cache read $0.30/M, 5m write $3.75/M,
    # 1h write $6/M, output $15/M
    cost = priced(book, "anthropic", "claude-sonnet-4-20250514",
                  tokens(input=2_000, cache_read=10_000, cache_write=4_000, output=800), cache_write_1h=one_hour)
    assert cost.by_type["input"] == D("0.006")  # 2,000 x 3 / 1M
    assert cost.by_type["cache_read"] == D("0.003")  # 10,000 x 0.30 / 1M
    assert cost.by_type["cache_write"] == write_cost
    assert cost.by_type["output"] == D("0.012")  # 800 x 15 / 1M
    assert cost.total == D("0.021") + write_cost
    assert cost.unit_prices["cache_write"] == write_rate
    assert cost.price_entry == "anthropic/claude-sonnet-4-0"


def test_reasoning_model_prices_reasoning_as_output_and_follows_catalog_dates(book: PriceBook) -> None:
    # genai-prices openai/o3: $10/M input, $40/M output until 2025-06-09; $2 / $8 from 2025-06-10;
    # cached input $0.50/M throughout; no separate reasoning price (reasoning bills as output)
    counts = tokens(input=10_000, cache_read=2_000, output=1_000, reasoning=5_000)
    before = priced(book, "openai", "o3", counts, datetime(2025, 6, 9, 23, 59, 59, tzinfo=UTC))
    after = priced(book, "openai", "o3", counts, datetime(2025, 6, 10, 0, 0, 0, tzinfo=UTC))
    assert before.by_type["input"] == D("0.1")  # 10,000 x 10 / 1M
    assert before.by_type["reasoning"] == D("0.2")  # 5,000 x 40 / 1M
    assert before.total == D("0.1") + D("0.001") + D("0.04") + D("0.2")
    assert after.by_type["input"] == D("0.02")  # 10,000 x 2 / 1M
    assert after.by_type["cache_read"] == D("0.001")  # 2,000 x 0.50 / 1M
    assert after.by_type["output"] == D("0.008")  # 1,000 x 8 / 1M
    assert after.by_type["reasoning"] == D("0.04")  # 5,000 x 8 / 1M
    assert after.price_entry == "openai/o3@2025-06-10"
    assert before.price_entry == "openai/o3"


def test_separate_reasoning_price(book: PriceBook) -> None:
    # genai-prices perplexity/sonar-deep-research: input $2/M, output $8/M, reasoning $3/M
    cost = priced(book, "perplexity", "sonar-deep-research", tokens(input=1_000, output=2_000, reasoning=10_000))
    assert cost.by_type["output"] == D("0.016")  # 2,000 x 8 / 1M
    assert cost.by_type["reasoning"] == D("0.03")  # 10,000 x 3 / 1M
    assert cost.total == D("0.048")  # + 1,000 x 2 / 1M


@pytest.mark.parametrize(("counts", "expected"), [
    # at exactly 200,000 input tokens (incl. cache) the base rates apply: the tier is "> 200k"
    (tokens(input=150_000, cache_read=50_000, output=1_000), D("0.1875") + D("0.00625") + D("0.01")),
    # one more token crosses it, and the tier rates apply to all tokens
    (tokens(input=150_001, cache_read=50_000, output=1_000), D("0.3750025") + D("0.0125") + D("0.015")),
])
def test_tiered_by_prompt_length(book: PriceBook, counts: TokenCounts, expected: Decimal) -> None:
    # genai-prices google/gemini-2.5-pro: <= 200k input: $1.25 in / $0.125 cached / $10 out per M;
    # > 200k: $2.50 / $0.25 / $15
    cost = priced(book, "gcp.gemini", "gemini-2.5-pro", counts)
    assert cost.total == expected


def test_catalog_effective_date_switches_tiered_to_flat(book: PriceBook) -> None:
    # genai-prices anthropic/claude-sonnet-4-6: tiered (> 200k input: $6 in / $22.50 out) until
    # 2026-03-12; flat $3 in / $15 out from 2026-03-13
    counts = tokens(input=300_000, output=1_000)
    before = priced(book, "anthropic", "claude-sonnet-4-6", counts, datetime(2026, 3, 12, 23, 0, tzinfo=UTC))
    after = priced(book, "anthropic", "claude-sonnet-4-6", counts, datetime(2026, 3, 13, 1, 0, tzinfo=UTC))
    assert before.total == D("1.8") + D("0.0225")  # 300k x 6 / 1M + 1k x 22.50 / 1M
    assert after.total == D("0.9") + D("0.015")  # 300k x 3 / 1M + 1k x 15 / 1M


def test_time_of_day_prices(book: PriceBook) -> None:
    # genai-prices deepseek/deepseek-chat: $0.27 in / $1.10 out per M from 00:30 to 16:30 UTC,
    # half that ($0.135 / $0.55) in the off-peak hours
    counts = tokens(input=1_000_000, output=1_000_000)
    assert priced(book, "deepseek", "deepseek-chat", counts, datetime(2026, 5, 1, 12, tzinfo=UTC)).total == D("1.37")
    assert priced(book, "deepseek", "deepseek-chat", counts, datetime(2026, 5, 1, 20, tzinfo=UTC)).total == D("0.685")
    assert priced(book, "deepseek", "deepseek-chat", counts, datetime(2026, 5, 1, 0, 29, 59, tzinfo=UTC)).total \
        == D("0.685")


def test_per_request_fee_from_the_catalog(book: PriceBook) -> None:
    # genai-prices perplexity/sonar: $1/M in, $1/M out, $12 per 1,000 requests
    cost = priced(book, "perplexity", "sonar", tokens(input=100, output=100))
    assert cost.by_type["request"] == D("0.012")
    assert cost.total == D("0.0122")


@pytest.mark.parametrize(("provider", "model", "entry", "input_rate"), [
    ("aws.bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", "aws/regional.anthropic.claude-sonnet-4-20250514-v1:0",
     D("3")),
    ("gcp.vertex_ai", "claude-sonnet-4@20250514", "google/claude-4-sonnet", D("3")),  # Google's Anthropic models
    ("azure.ai.openai", "gpt-4o", "azure/gpt-4o", D("2.5")),
    ("x_ai", "grok-3", "x-ai/grok-3", D("3")),
    ("mistral_ai", "mistral-large-latest", "mistral/mistral-large", D("2")),
    ("unknown", "gpt-4o", "openai/gpt-4o", D("2.5")),  # no provider reported: inferred from the model
])
def test_semconv_providers_map_to_catalog_providers(book: PriceBook, provider: str, model: str, entry: str,
                                                    input_rate: Decimal) -> None:
    cost = priced(book, provider, model, tokens(input=1_000_000))
    assert cost.price_entry == entry
    assert cost.total == input_rate


@pytest.mark.parametrize(("provider", "model"), [
    ("openai", "gpt-nonexistent-9"),
    ("ibm.watsonx.ai", "ibm/granite-13b-chat-v2"),  # provider not in the catalog
    ("self-hosted", "llama-3.1-70b-ft"),  # only in the override file, not loaded here
    ("openai", ""),
])
def test_unknown_model_or_provider_is_unpriced(book: PriceBook, provider: str, model: str) -> None:
    assert book.price(provider, model, tokens(input=1_000, output=1_000), NOV_2026) is None
    assert book.cost(call(provider, model, tokens(input=1_000), NOV_2026)) is None


def test_zero_price_in_the_catalog_is_a_price(book: PriceBook) -> None:
    # genai-prices google/gemma-3: $0 in, $0 out (free tier): priced at $0, not unpriced
    cost = priced(book, "gcp.gemini", "gemma-3-27b-it", tokens(input=5_000, output=5_000))
    assert cost.total == 0
    assert cost.price_entry == "google/gemma-3"


def test_cost_uses_the_span_end_time_and_always_has_every_class(book: PriceBook) -> None:
    counts = tokens(input=1_000_000)
    old = book.cost(call("openai", "o3", counts, datetime(2025, 1, 1, tzinfo=UTC)))
    new = book.cost(call("openai", "o3", counts, datetime(2025, 7, 1, tzinfo=UTC)))
    assert old is not None and new is not None
    assert (old.total, new.total) == (D("10"), D("2"))
    assert list(old.by_type) == list(COST_TYPES)
    assert book.cost(call("openai", "o3", TokenCounts(), NOV_2026)).by_type == dict.fromkeys(COST_TYPES, 0)


def test_resolution_is_cached_per_provider_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    book = PriceBook()
    lookups: list[tuple[str, str]] = []
    find = book.catalog.find
    monkeypatch.setattr(book.catalog, "find", lambda p, m: lookups.append((p, m)) or find(p, m))
    for hour in range(24):  # deepseek's prices change with the time of day: the cache must not pin one
        book.cost(call("deepseek", "deepseek-chat", tokens(input=1), datetime(2026, 5, 1, hour, tzinfo=UTC)))
        book.cost(call("openai", "nope", tokens(input=1), NOV_2026))
    assert lookups == [("deepseek", "deepseek-chat"), ("openai", "nope")]


def test_versions_without_overrides(book: PriceBook) -> None:
    assert book.catalog_version == genai_prices.__version__
    assert book.overrides_version == "none"


def test_auto_update_is_started_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []

    class FakeUpdater:
        def start(self) -> None:
            started.append(self)

        def stop(self) -> None:
            started.remove(self)

    monkeypatch.setattr(genai_prices, "UpdatePrices", FakeUpdater)
    PriceBook.from_config(Config())
    assert started == []
    assert not any(thread.name == "genai_prices:update" for thread in threading.enumerate())
    book = PriceBook.from_config(parse_config({"pricing": {"auto_update": True}}))
    assert len(started) == 1
    book.close()
    assert started == []


# -- the genai-prices conversion ---------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "model", "counts", "one_hour", "at"), [
    ("openai", "gpt-4o", tokens(input=1_234, cache_read=5_678, output=910), False, NOV_2026),
    ("anthropic", "claude-opus-4-1", tokens(input=1_000, cache_read=20_000, cache_write=3_000, output=700), False,
     NOV_2026),
    ("anthropic", "claude-opus-4-1", tokens(input=1_000, cache_read=20_000, cache_write=3_000, output=700), True,
     NOV_2026),
    ("openai", "o4-mini", tokens(input=3_000, cache_read=1_000, output=200, reasoning=4_000), False, NOV_2026),
    ("perplexity", "sonar-deep-research", tokens(input=10, output=20, reasoning=30_000), False, NOV_2026),
    ("gcp.gemini", "gemini-2.5-pro", tokens(input=180_000, cache_read=30_000, output=5_000, reasoning=9_000), False,
     NOV_2026),
    ("anthropic", "claude-sonnet-4-5", tokens(input=190_000, cache_read=5_000, cache_write=6_000, output=1), True,
     NOV_2026),
    ("deepseek", "deepseek-reasoner", tokens(input=7, cache_read=11, output=13, reasoning=17), False,
     datetime(2026, 5, 1, 20, tzinfo=UTC)),
])
def test_disjoint_classes_convert_to_genai_prices_usage(book: PriceBook, provider: str, model: str,
                                                        counts: TokenCounts, one_hour: bool, at: datetime) -> None:
    usage = to_genai_usage(**counts.as_dict(), cache_write_1h=one_hour)
    # genai-prices nests the counts: input includes cache reads and writes, output includes reasoning
    assert usage.input_tokens == counts.input + counts.cache_read + counts.cache_write
    assert usage.output_tokens == counts.output + counts.reasoning
    expected = genai_prices.calc_price(usage, model, provider_id=PROVIDER_MAP.get(provider, provider),
                                       genai_request_timestamp=at)
    assert priced(book, provider, model, counts, at, cache_write_1h=one_hour).total == expected.total_price


HALF_PICO_PER_CLASS = Decimal("3e-12")  # 6 classes x 0.5 x 10^-12 USD


def test_whole_catalog_agrees_with_genai_prices(book: PriceBook) -> None:
    """Every catalog model, at several times, with random counts in every class, 5m and 1h writes."""
    rng = random.Random(20261123)
    times = [datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, 3, tzinfo=UTC), datetime(2026, 11, 20, 12, tzinfo=UTC),
             datetime(2027, 6, 1, 20, tzinfo=UTC)]
    snapshot = get_snapshot()
    checked = 0
    for provider in snapshot.providers:
        for model in provider.models:
            if provider.find_model(model.id, all_providers=snapshot.providers) is not model:
                continue  # an id that another model's match logic claims first
            for at in times:
                for one_hour in (False, True):
                    counts = TokenCounts(*(rng.choice((0, rng.randint(1, 400_000))) for _ in range(5)))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        expected = genai_prices.calc_price(to_genai_usage(**counts.as_dict(), cache_write_1h=one_hour),
                                                           model.id, provider_id=provider.id,
                                                           genai_request_timestamp=at).total_price
                    cost = book.price(provider.id, model.id, counts, at, cache_write_1h=one_hour)
                    # each of our six classes is rounded half-even to 10^-12 USD once (genai_meter.money);
                    # genai-prices does not round (and some catalog rates carry float noise such as
                    # 0.18000000000000002), so the totals agree to within half a unit per class
                    assert cost is not None and abs(cost.total - expected) <= HALF_PICO_PER_CLASS, (
                        provider.id, model.id, at, counts, one_hour)
                    checked += 1
    assert checked > 10_000


# -- overrides ---------------------------------------------------------------------------------------


def test_override_effective_dates(overridden: PriceBook) -> None:
    # overrides.yaml: $0.20 / $0.60 per M always; $0.10 / $0.30 from 2026-12-01
    counts = tokens(input=1_000_000, output=1_000_000)
    before = priced(overridden, "self-hosted", "llama-3.1-70b-ft", counts, datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    after = priced(overridden, "self-hosted", "llama-3.1-70b-ft", counts, datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    assert before.total == D("0.80")
    assert after.total == D("0.40")
    assert (before.price_source, before.price_entry) == ("overrides", "self-hosted/llama-3.1-70b-ft")
    assert before.price_version == overridden.overrides_version  # no `from`: the file's version
    assert (after.price_entry, after.price_version) == ("self-hosted/llama-3.1-70b-ft@2026-12-01", "2026-12-01")
    assert after.price_source == "overrides"


def test_discount_on_the_catalog_price_from_its_date(overridden: PriceBook) -> None:
    # genai-prices openai/gpt-4o: $2.50 in / $10 out per M; overrides.yaml: 15% off from 2026-10-01
    counts = tokens(input=1_000_000, output=100_000)
    before = priced(overridden, "openai", "gpt-4o", counts, datetime(2026, 9, 30, 12, tzinfo=UTC))
    after = priced(overridden, "openai", "gpt-4o", counts, datetime(2026, 10, 1, 0, 0, 1, tzinfo=UTC))
    assert before.total == D("3.5")  # 2.50 + 0.10 x 10
    assert before.price_source == "genai-prices"
    assert after.by_type["input"] == D("2.125")  # 2.50 x 0.85
    assert after.by_type["output"] == D("0.85")  # 100k x 10 / 1M x 0.85
    assert after.unit_prices == {"input": D("2.125"), "output": D("8.5")}
    assert after.price_source == "overrides"
    assert after.price_entry == "openai/gpt-4o@2026-10-01 (15% off openai/gpt-4o)"
    assert after.price_version == "2026-10-01"
    # a dated snapshot name resolves to the same catalog model, so the discount covers it too
    dated = priced(overridden, "openai", "gpt-4o-2024-11-20", counts, datetime(2026, 10, 2, tzinfo=UTC))
    assert dated.total == after.total
    # other providers of the same model are untouched
    assert priced(overridden, "azure.ai.openai", "gpt-4o", counts).price_source == "genai-prices"


def test_per_request_fee_in_an_override(overridden: PriceBook) -> None:
    # overrides.yaml: azure.ai.openai gpt-4o-mini $0.15 in / $0.60 out per M + $0.0001 per request
    cost = priced(overridden, "azure.ai.openai", "gpt-4o-mini", tokens(input=2_000, output=500))
    assert cost.by_type["request"] == D("0.0001")
    assert cost.total == D("0.0003") + D("0.0003") + D("0.0001")


def test_override_in_the_config_currency(overridden: PriceBook) -> None:
    # overrides.yaml: EUR 0.46 in / 1.38 out / 0.092 cached per M, config rate 0.92 EUR per USD
    # -> $0.50 / $1.50 / $0.10
    cost = priced(overridden, "mistral_ai", "ACME-FT-support-v2", tokens(input=1_000_000, cache_read=1_000_000,
                                                                         output=1_000_000))
    assert cost.by_type == {"input": D("0.5"), "cache_read": D("0.1"), "cache_write": 0, "output": D("1.5"),
                            "reasoning": 0, "request": 0}
    assert cost.price_entry == "mistral_ai/~acme-ft-.*"
    assert overridden.price("mistral_ai", "acme-other", tokens(input=1), NOV_2026) is None


@pytest.mark.parametrize(("counts", "expected"), [
    # base: GBP 1 in / 2 out / 3 reasoning per M + GBP 0.01 per request; 10% off; 0.8 GBP per USD
    # -> x 0.9 / 0.8 = x 1.125: $1.125 / $2.25 / $3.375 per M, $0.01125 per request
    (tokens(input=100_000, output=100_000, reasoning=100_000), D("0.1125") + D("0.225") + D("0.3375") + D("0.01125")),
    # above 100,000 input tokens: GBP 2 in / 4 out -> $2.25 / $4.50; reasoning keeps its base price
    (tokens(input=100_001, output=100_000, reasoning=100_000),
     D("0.22500225") + D("0.45") + D("0.3375") + D("0.01125")),
])
def test_override_tiers_discount_and_explicit_rate(overridden: PriceBook, counts: TokenCounts,
                                                   expected: Decimal) -> None:
    cost = priced(overridden, "self-hosted", "qwen-long", counts)
    assert cost.total == expected
    assert cost.price_entry == "self-hosted/qwen-long (10% off)"


def test_discount_without_a_catalog_price_leaves_the_call_unpriced() -> None:
    entries = parse_overrides("- {provider: self-hosted, model: mystery, discount_percent: 20}\n", "p.yaml",
                              CurrencyConfig(), "v1")
    book = PriceBook(overrides=entries, overrides_version="v1")
    assert book.price("self-hosted", "mystery", tokens(input=1), NOV_2026) is None


def test_newest_effective_entry_wins_and_later_entries_break_ties() -> None:
    """Exact and regex entries compete on `from`; at equal `from` the later entry in the file wins."""
    text = """
- {provider: p, model: m, prices: {input_mtok: "1", output_mtok: "0"}}
- {provider: p, match: "m|n", prices: {input_mtok: "2", output_mtok: "0"}}
- {provider: p, match: "m|n", from: 2026-06-01, prices: {input_mtok: "3", output_mtok: "0"}}
- {provider: p, model: o, from: 2026-06-01, prices: {input_mtok: "5", output_mtok: "0"}}
- {provider: p, model: m, from: "2026-09-01T12:00:00+02:00", prices: {input_mtok: "4", output_mtok: "0"}}
"""
    book = PriceBook(overrides=parse_overrides(text, "p.yaml", CurrencyConfig(), "v1"))
    million = tokens(input=1_000_000)
    assert priced(book, "p", "m", million, datetime(2026, 1, 1, tzinfo=UTC)).total == D("2")
    assert priced(book, "p", "m", million, datetime(2026, 6, 1, tzinfo=UTC)).total == D("3")
    assert priced(book, "p", "m", million, datetime(2026, 9, 1, 9, 59, tzinfo=UTC)).total == D("3")
    assert priced(book, "p", "m", million, datetime(2026, 9, 1, 10, 0, tzinfo=UTC)).total == D("4")
    assert priced(book, "p", "n", million, datetime(2026, 1, 1, tzinfo=UTC)).total == D("2")
    assert priced(book, "p", "n", million, datetime(2026, 9, 2, tzinfo=UTC)).total == D("3")
    assert book.price("p", "o", million, datetime(2026, 5, 31, 23, 59, tzinfo=UTC)) is None  # not yet effective
    assert priced(book, "p", "o", million, datetime(2026, 6, 1, tzinfo=UTC)).total == D("5")


def test_yaml_numbers_become_exact_decimals() -> None:
    [entry] = parse_overrides("- {provider: p, model: m, prices: {input_mtok: 0.1, output_mtok: 3}}\n", "p.yaml",
                              CurrencyConfig(), "v1")
    assert entry.plan is not None
    assert entry.plan.brackets[0].input == D("0.1")  # not 0.1000000000000000055511151231257827


def test_overrides_version_is_the_file_hash(overridden: PriceBook) -> None:
    digest = hashlib.sha256((FIXTURES / "overrides.yaml").read_bytes()).hexdigest()
    assert overridden.overrides_version == digest[:12]
    assert overridden.catalog_version == genai_prices.__version__


def test_override_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "overrides.yaml", tmp_path / "my-prices.yaml")
    (tmp_path / "genai-meter.yaml").write_text(
        "pricing:\n  overrides: my-prices.yaml\n  currency: {code: EUR, per_usd: '0.92'}\n", encoding="utf-8")
    book = PriceBook.from_config(load_config(tmp_path / "genai-meter.yaml"))
    assert book.price("self-hosted", "llama-3.1-70b-ft", tokens(input=1), NOV_2026) is not None


# -- override file errors ----------------------------------------------------------------------------


def test_errors_name_the_file_the_entry_and_the_key() -> None:
    path = FIXTURES / "bad-entries.yaml"
    with pytest.raises(ConfigError) as raised:
        load_overrides(path, CurrencyConfig())
    lines = str(raised.value).splitlines()
    assert lines == [
        f"{path}: entry 0 (line 1): prices.inptu_mtok: unknown key",
        f"{path}: entry 1 (line 4): prices.input_mtok: expected a decimal number, got 'abc'",
    ]


def test_currency_without_a_rate_is_an_error() -> None:
    path = FIXTURES / "bad-currency.yaml"
    with pytest.raises(ConfigError, match=r"bad-currency\.yaml: entry 0 \(line 1\): currency: no rate for JPY"):
        load_overrides(path, CurrencyConfig(code="EUR", per_usd=D("0.92")))


@pytest.mark.parametrize(("text", "message"), [
    ('- {provider: a, model: b, prices: {input_mtok: "-1", output_mtok: "1"}}',
     r"entry 0 \(line 1\): prices\.input_mtok: Input should be greater than or equal to 0"),
    ("- {provider: a, model: b, prices: {input_mtok: true, output_mtok: 1}}",
     r"entry 0 \(line 1\): prices\.input_mtok: expected a decimal number, got bool"),
    ("- {provider: a, model: b, prices: {input_mtok: 1}}", r"entry 0 \(line 1\): prices\.output_mtok: Field required"),
    ('- {provider: a, match: "(", discount_percent: 5}', r"entry 0 \(line 1\): \(entry\): match is not a valid regex"),
    ("- {provider: a, model: b}", r"\(entry\): set prices, discount_percent or both"),
    ('- {provider: a, model: b, from: "next week", discount_percent: 5}', r"from: expected a date"),
    ("- {provider: a, model: b, discount_percent: 150}", r"discount_percent: Input should be less than or equal to 100"),
    ("- {provider: a, model: b, prices: {input_mtok: 1, output_mtok: 1, tiers: [{above_input_tokens: 9, input_mtok: 2}, "
     "{above_input_tokens: 5, input_mtok: 3}]}}", r"prices\.tiers: tiers must have strictly increasing"),
    ("- {provider: a, model: b, discount_percent: 5}\n- {provider: a, model: B, discount_percent: 6}",
     r"entry 1 \(line 2\): from: same provider, model and from as entry 0"),
    ("- {provider: a, model: b, discount_percent: 5, currency: EUR}", r"currency applies to prices"),
    ("provider: a", r"p\.yaml: the top level must be a list of price entries"),
    ("- {provider: a, model: [}", r"p\.yaml: line 1: not valid YAML"),
    ("- 5", r"entry 0 \(line 1\): an entry must be a mapping"),
])
def test_invalid_entries(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        parse_overrides(text, "p.yaml", CurrencyConfig(), "v1")
    assert str(raised.value).startswith("p.yaml:")


def test_missing_override_file_is_a_config_error(tmp_path: Path) -> None:
    config = parse_config({"pricing": {"overrides": str(tmp_path / "absent.yaml")}})
    with pytest.raises(ConfigError, match=r"absent\.yaml: cannot read price overrides"):
        PriceBook.from_config(config)
