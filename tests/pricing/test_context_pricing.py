"""Price context (service tier, batch) and billed units, against genai-prices' own `calc_price`.

Each kind of call is priced by `PriceBook` and by `genai_prices.calc_price` with the matching
`price_context`, through `to_genai_usage` (our disjoint classes and units -> genai-prices' nested
`Usage`), and the two agree to the last digit (10^-12 USD: genai-prices does not round, we round each
class and unit half-even once, so an exact genai-prices figure must equal ours exactly). The three
figures of docs/pricing.md are literals worked out by hand from the genai-prices 0.2.3 data.
"""

from __future__ import annotations

import random
import warnings
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import genai_prices
import pytest
from genai_prices.data_snapshot import get_snapshot

from genai_meter.pricing import PROVIDER_MAP, PriceBook, to_genai_usage, usage_counts
from genai_meter.pricing.book import to_ns
from genai_meter.pricing.units import UNITS
from genai_meter.records import Cost, LLMCall, TokenCounts

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # every tier and batch variant of the data is in force
PICO = Decimal("1e-12")
D = Decimal


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


def tokens(input: int = 0, cache_read: int = 0, cache_write: int = 0, output: int = 0, reasoning: int = 0) -> TokenCounts:
    return TokenCounts(input=input, cache_read=cache_read, cache_write=cache_write, output=output, reasoning=reasoning)


def call(provider: str, model: str, counts: TokenCounts, *, tier: str = "", batch: bool = False,
         units: dict[str, int] | None = None, at: datetime = AT) -> LLMCall:
    return LLMCall(service="svc", environment="prod", provider=provider, model=model, operation="chat", status="ok",
                   error_type="", duration_s=1.0, ttft_s=None, tokens=counts, end_ns=to_ns(at), service_tier=tier,
                   batch=batch, units=dict(units or {}))


def genai_total(provider: str, model: str, counts: TokenCounts, units: dict[str, int] | None,
                context: dict[str, str] | None, at: datetime = AT, *, cache_write_1h: bool = False) -> Decimal:
    usage = to_genai_usage(**counts.as_dict(), cache_write_1h=cache_write_1h, units=units)
    return genai_prices.calc_price(usage, model, provider_id=PROVIDER_MAP.get(provider, provider),
                                   genai_request_timestamp=at, price_context=context).total_price


def priced(book: PriceBook, c: LLMCall) -> Cost:
    cost = book.cost(c)
    assert cost is not None
    return cost


# -- the figures of docs/pricing.md ------------------------------------------------------------------


def test_flex_gpt_5_mini_is_half_the_standard_price(book: PriceBook) -> None:
    # gpt-5-mini: $0.25 in / $2 out per Mtok; flex (from 2026-10-12) $0.125 / $1
    counts = tokens(input=10_000, output=2_000)
    standard = priced(book, call("openai", "gpt-5-mini", counts))
    flex = priced(book, call("openai", "gpt-5-mini", counts, tier="flex"))
    assert standard.total == D("0.0065")  # 10,000 x 0.25/M + 2,000 x 2/M
    assert flex.total == D("0.00325")  # 10,000 x 0.125/M + 2,000 x 1/M
    assert flex.by_type["input"] == D("0.00125") and flex.by_type["output"] == D("0.002")
    assert flex.price_entry == "openai/gpt-5-mini [flex]" and flex.unpriced_units == ()
    assert flex.unit_prices == {"input": D("0.125"), "output": D("1")}


def test_priority_gpt_4o(book: PriceBook) -> None:
    # gpt-4o: $2.50 / $10; priority $4.25 / $17
    counts = tokens(input=10_000, output=2_000)
    assert priced(book, call("openai", "gpt-4o", counts)).total == D("0.045")
    priority = priced(book, call("openai", "gpt-4o", counts, tier="priority"))
    assert priority.total == D("0.0765")  # 10,000 x 4.25/M + 2,000 x 17/M
    assert priority.price_entry == "openai/gpt-4o [priority]"


def test_gpt_audio_prices_audio_tokens_apart(book: PriceBook) -> None:
    # gpt-audio: text $2.50 / $10, audio $32 in / $64 out per Mtok. 6,000 input tokens of which 3,000 audio,
    # 3,000 output tokens of which 1,000 audio.
    audio = priced(book, call("openai", "gpt-audio", tokens(input=3_000, output=2_000),
                              units={"input_audio_tokens": 3_000, "output_audio_tokens": 1_000}))
    assert audio.unit_pico == {"input_audio_tokens": 96_000_000_000, "output_audio_tokens": 64_000_000_000}
    assert audio.by_type["input"] == D("0.0075") and audio.by_type["output"] == D("0.02")
    assert audio.total == D("0.1875")  # 0.0075 + 0.02 + 0.096 + 0.064
    as_text = priced(book, call("openai", "gpt-audio", tokens(input=6_000, output=3_000)))
    assert as_text.total == D("0.045")  # the same tokens all priced as text


# -- every kind against calc_price -----------------------------------------------------------------------

KINDS = [
    # (id, provider, model, tokens, units, tier, batch, genai-prices context)
    ("flex", "openai", "gpt-5-mini", tokens(input=12_345, cache_read=6_789, output=1_011, reasoning=2_345), {},
     "flex", False, {"service_tier": "flex"}),
    ("priority", "openai", "o4-mini", tokens(input=7_001, cache_read=3_000, output=99, reasoning=4_321), {},
     "priority", False, {"service_tier": "priority"}),
    ("batch", "openai", "gpt-4o", tokens(input=10_000, cache_read=4_000, output=2_000), {}, "", True,
     {"processing": "batch"}),
    ("batch, 1h cache writes", "anthropic", "claude-opus-4-8", tokens(input=900, cache_read=20_000, cache_write=5_000,
                                                                       output=777), {}, "", True, {"processing": "batch"}),
    ("anthropic fast", "anthropic", "claude-opus-5", tokens(input=1_234, cache_read=5_000, output=321), {}, "fast",
     False, {"speed": "fast"}),
    ("audio", "openai", "gpt-audio", tokens(input=3_000, output=2_000),
     {"input_audio_tokens": 3_000, "output_audio_tokens": 1_000}, "", False, None),
    ("cached audio", "openai", "gpt-realtime", tokens(input=500, cache_read=1_000, output=300),
     {"input_audio_tokens": 2_000, "cache_audio_read_tokens": 8_000, "output_audio_tokens": 1_200}, "", False, None),
    ("cached audio, priced by its ancestor", "openai", "gpt-audio", tokens(input=100, output=10),
     {"input_audio_tokens": 700, "cache_audio_read_tokens": 300}, "", False, None),
    ("image input", "openai", "gpt-image-1", tokens(input=200, cache_read=100, output=50),
     {"input_image_tokens": 1_000, "cache_image_read_tokens": 500, "output_image_tokens": 4_160}, "", False, None),
    ("image input, batch", "openai", "gpt-image-1", tokens(input=200, output=50),
     {"input_image_tokens": 1_000, "output_image_tokens": 1_056}, "", True, {"processing": "batch"}),
    ("image output", "gcp.gemini", "gemini-2.5-flash-image", tokens(input=120, output=30),
     {"output_image_tokens": 1_290}, "", False, None),
    ("web search", "openai", "gpt-4o", tokens(input=1_000, output=500), {"web_searches": 3}, "", False, None),
    ("web search, search type", "perplexity", "perplexity/sonar", tokens(input=10, output=20),
     {"web_searches": 7}, "", False, None),
    ("transcription (audio hours)", "openai", "whisper-1", tokens(), {"audio_seconds": 754}, "", False, None),
    ("transcription, input audio seconds", "mistral_ai", "voxtral-small-24b-2507", tokens(input=10, output=400),
     {"input_audio_seconds": 61}, "", True, {"processing": "batch"}),
    ("transcription, Groq's 10 s minimum", "groq", "whisper-large-v3", tokens(), {"input_audio_seconds": 4}, "",
     False, None),
    ("speech (characters)", "openai", "tts-1", tokens(), {"input_characters": 1_234}, "", False, None),
    ("document pages", "mistral_ai", "mistral-ocr-2505", tokens(),
     {"input_document_pages": 10, "input_annotated_document_pages": 4}, "", False, None),
    ("tiered: audio input counts toward the threshold", "gcp.gemini", "gemini-2.5-pro",
     tokens(input=150_000, cache_read=10_000, output=1_000), {"input_audio_tokens": 60_000}, "", False, None),
]


@pytest.mark.parametrize(("provider", "model", "counts", "units", "tier", "batch", "context"),
                         [k[1:] for k in KINDS], ids=[k[0] for k in KINDS])
def test_kinds_agree_with_calc_price_to_the_last_digit(book: PriceBook, provider: str, model: str,
                                                       counts: TokenCounts, units: dict[str, int], tier: str,
                                                       batch: bool, context: dict[str, str] | None) -> None:
    cost = priced(book, call(provider, model, counts, tier=tier, batch=batch, units=units))
    expected = genai_total(provider, model, counts, units, context)
    assert cost.unpriced_units == ()
    assert cost.total == expected.quantize(PICO, ROUND_HALF_EVEN)
    if expected == expected.quantize(PICO):  # genai-prices' figure is exact at 10^-12: ours is the same number
        assert cost.total == expected
    assert set(cost.unit_pico) == {unit for unit, n in units.items() if n}
    if tier or batch:  # the context changed the price
        assert cost.total != priced(book, call(provider, model, counts, units=units)).total


def test_groq_whisper_bills_ten_seconds_at_least(book: PriceBook) -> None:
    # $0.111 per hour of audio, at least 10 s per request (genai-prices' rule)
    short = priced(book, call("groq", "whisper-large-v3", tokens(), units={"audio_seconds": 4}))
    assert short.unit_pico == {"audio_seconds": 308_333_333}  # 10 x 0.111 / 3600 = 0.000308333333.. USD
    long = priced(book, call("groq", "whisper-large-v3", tokens(), units={"audio_seconds": 3_600}))
    assert long.total == D("0.111")


def test_the_conversion_nests_our_disjoint_counts() -> None:
    counts = usage_counts(input=100, cache_read=20, cache_write=3, output=40, reasoning=5,
                          units={"input_audio_tokens": 7, "cache_audio_read_tokens": 11, "output_audio_tokens": 13,
                                 "web_searches": 2, "custom.thing": 9, "no_such_unit": 4})
    assert counts["input_tokens"] == 100 + 20 + 3 + 7 + 11
    assert counts["cache_read_tokens"] == 20 + 11
    assert counts["cache_write_tokens"] == counts["cache_write_5m_tokens"] == 3
    assert counts["cache_write_1h_tokens"] == 0
    assert counts["input_audio_tokens"] == 7 + 11
    assert counts["cache_audio_read_tokens"] == 11
    assert counts["output_tokens"] == 40 + 5 + 13
    assert counts["output_audio_tokens"] == 13 and counts["output_reasoning_tokens"] == 5
    assert counts["web_searches"] == 2 and counts["input_text_tokens"] == 0
    assert "requests" not in counts and set(counts) == set(UNITS) - {"requests"}
    one_hour = usage_counts(cache_write=3, cache_write_1h=True)
    assert (one_hour["cache_write_tokens"], one_hour["cache_write_1h_tokens"], one_hour["cache_write_5m_tokens"]) == (3, 3, 0)


# -- flags: a context or unit without a price -------------------------------------------------------


def test_a_tier_without_a_variant_is_the_standard_price_flagged(book: PriceBook) -> None:
    counts = tokens(input=10_000, output=2_000)
    flex = priced(book, call("openai", "gpt-4o", counts, tier="flex"))  # gpt-4o has no flex price
    assert flex.total == D("0.045") and flex.unpriced_units == ("tier:flex",)
    assert flex.price_entry == "openai/gpt-4o"
    before = priced(book, call("openai", "gpt-4o", counts, tier="priority", at=datetime(2026, 10, 1, tzinfo=UTC)))
    assert before.total == D("0.045") and before.unpriced_units == ("tier:priority",)  # variant from 2026-10-12
    batch = priced(book, call("openai", "gpt-audio", counts, batch=True))  # no batch price
    assert batch.unpriced_units == ("batch",)
    both = priced(book, call("openai", "gpt-4o", counts, tier="flex", batch=True))
    assert both.unpriced_units == ("tier:flex",) and both.price_entry == "openai/gpt-4o [batch]"
    assert both.total == D("0.0225")  # the batch price; flex has none
    # Azure serves gpt-5-mini through genai-prices' fallback to OpenAI: OpenAI's tier rates do not apply
    azure = priced(book, call("azure.ai.openai", "gpt-5-mini", counts, tier="flex"))
    assert azure.total == D("0.0065") and azure.unpriced_units == ("tier:flex",)
    assert genai_total("azure.ai.openai", "gpt-5-mini", counts, None, {"service_tier": "flex"}) == D("0.0065")


@pytest.mark.parametrize("tier", ["", "default", "standard", "Default "])
def test_standard_tier_spellings(book: PriceBook, tier: str) -> None:
    cost = priced(book, call("openai", "gpt-4o", tokens(input=10_000, output=2_000), tier=tier))
    assert cost.total == D("0.045") and cost.unpriced_units == () and cost.price_entry == "openai/gpt-4o"


def test_tier_batch_is_the_batch_flag(book: PriceBook) -> None:
    cost = priced(book, call("anthropic", "claude-opus-5", tokens(input=1_000_000), tier="batch"))
    assert cost.total == D("2.5") and cost.price_entry == "anthropic/claude-opus-5 [batch]"


def test_units_without_a_price_make_the_call_partly_priced(book: PriceBook) -> None:
    cost = priced(book, call("anthropic", "claude-3-haiku", tokens(input=1_000, output=100),
                             units={"web_searches": 2, "custom.image_1024_hd": 1, "output_audio_tokens": 50,
                                    "no_such_unit": 3, "requests": 1, "input_image_tokens": 0}))
    # claude-3-haiku prices no web search; output audio tokens bill as output (an ancestor); zero counts bill nothing
    assert cost.unpriced_units == ("custom.image_1024_hd", "no_such_unit", "requests", "web_searches")
    assert cost.unit_pico == {"output_audio_tokens": 62_500_000}  # 50 x $1.25/M
    assert cost.total == D("0.00025") + D("0.000125") + D("0.0000625")


def test_quote_and_price_take_the_context(book: PriceBook) -> None:
    quote = book.quote("openai", "gpt-5-mini", AT, service_tier="flex")
    assert quote is not None and quote.rates.input == D("0.125") and quote.flags == ()
    flagged = book.quote("openai", "gpt-4o", AT, service_tier="flex")
    assert flagged is not None and flagged.flags == ("tier:flex",)
    cost = book.price("openai", "gpt-audio", tokens(input=3_000, output=2_000), AT,
                      units={"input_audio_tokens": 3_000, "output_audio_tokens": 1_000})
    assert cost is not None and cost.total == D("0.1875")
    assert book.fixed_price("openai", "gpt-4o") == (True, book.quote("openai", "gpt-4o", AT).plan)  # type: ignore[union-attr]
    assert book.fixed_price("openai", "gpt-4o", service_tier="flex") == (False, None)
    assert book.fixed_price("openai", "gpt-4o", units=True) == (False, None)


def test_whole_catalog_in_context_with_units_agrees_with_calc_price(book: PriceBook) -> None:
    """Every catalog model with random counts, units and contexts: within half a 10^-12 USD per class and unit."""
    rng = random.Random(20261207)
    snapshot = get_snapshot()
    unit_keys = sorted(set(UNITS) - {"requests"})
    contexts = [("", False), ("flex", False), ("priority", False), ("fast", False), ("", True), ("flex", True)]
    checked = 0
    for provider in snapshot.providers:
        for model in provider.models:
            if provider.find_model(model.id, all_providers=snapshot.providers) is not model:
                continue
            tier, batch = rng.choice(contexts)
            units = {key: rng.randint(1, 300_000) for key in rng.sample(unit_keys, 3)}
            counts = TokenCounts(*(rng.choice((0, rng.randint(1, 300_000))) for _ in range(5)))
            context = {**({"service_tier": tier} if tier else {}), **({"speed": "fast"} if tier == "fast" else {}),
                       **({"processing": "batch"} if batch else {})}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = genai_prices.calc_price(to_genai_usage(**counts.as_dict(), units=units), model.id,
                                                   provider_id=provider.id, genai_request_timestamp=AT,
                                                   price_context=context or None).total_price
            cost = book.price(provider.id, model.id, counts, AT, service_tier=tier, batch=batch, units=units)
            assert cost is not None
            assert abs(cost.total - expected) <= D("0.5e-12") * (6 + len(units)), (provider.id, model.id, units)
            checked += 1
    assert checked > 1_000


@pytest.mark.parametrize("one_hour", [False, True])
def test_cache_writes_5m_and_1h_in_a_context_with_units(book: PriceBook, one_hour: bool) -> None:
    # claude-opus-4-8 batch (from 2026-10-14): $3.125 per Mtok 5-minute writes, $5 1-hour writes
    counts = tokens(input=2_000, cache_read=30_000, cache_write=10_000, output=900)
    c = call("anthropic", "claude-opus-4-8", counts, batch=True, units={"web_searches": 4})
    c.cache_write_1h = one_hour
    cost = priced(book, c)
    assert cost.by_type["cache_write"] == (D("0.05") if one_hour else D("0.03125"))
    assert cost.unit_pico == {"web_searches": 40_000_000_000}  # 4 x $10/K: batch gives no search price
    expected = genai_total("anthropic", "claude-opus-4-8", counts, {"web_searches": 4}, {"processing": "batch"},
                           cache_write_1h=one_hour)
    assert cost.total == expected
