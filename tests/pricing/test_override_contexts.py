"""The override file's service-tier, batch, unit and custom-unit prices (docs/pricing.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from genai_meter.config import ConfigError, CurrencyConfig
from genai_meter.pricing import PriceBook, parse_overrides
from genai_meter.records import TokenCounts

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
D = Decimal
FILE = """
- provider: self-hosted
  model: llama-audio
  prices:
    input_mtok: "1"
    output_mtok: "4"
    cache_read_mtok: "0.5"
    input_audio_mtok: "10"
    cache_audio_read_mtok: "2.5"
    output_audio_mtok: "20"
    web_searches_kcount: "5"
    audio_hours: "0.6"
    tiers:
      - {above_input_tokens: 100000, input_mtok: "2"}
  service_tiers:
    flex: {input_mtok: "0.5", output_mtok: "2", input_audio_mtok: "5"}
    priority: {input_mtok: "3"}
  batch: {input_mtok: "0.4", output_mtok: "1.6"}
  units:
    custom.image_1024_hd: "0.08"
    custom.image_1024: "0.04"

- provider: openai
  model: gpt-4o
  discount_percent: 10
  units: {custom.moderation_call: "0.001"}

- provider: self-hosted
  model: eur-model
  prices: {input_mtok: "2", output_mtok: "2"}
  service_tiers: {flex: {input_mtok: "1"}}
  units: {custom.page: "0.5"}
  currency: EUR
  per_usd: "0.5"
  discount_percent: 20
"""


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook(overrides=parse_overrides(FILE, "prices.yaml", CurrencyConfig(), "v1"))


def test_service_tier_prices_replace_key_by_key(book: PriceBook) -> None:
    counts = TokenCounts(input=10_000, cache_read=10_000, output=1_000_000)  # under the 100k input tier
    standard = book.price("self-hosted", "llama-audio", counts, AT)
    assert standard is not None and standard.total == D("4.015")  # 0.01 + 0.005 + 4
    flex = book.price("self-hosted", "llama-audio", counts, AT, service_tier="flex")
    assert flex is not None and flex.total == D("2.01")  # 0.005 + cache read unchanged 0.005 + 2
    assert flex.price_entry == "self-hosted/llama-audio [flex]" and flex.unpriced_units == ()
    priority = book.price("self-hosted", "llama-audio", counts, AT, service_tier="priority")
    assert priority is not None and priority.total == D("4.035")  # 0.03 + 0.005 + 4
    batch = book.price("self-hosted", "llama-audio", counts, AT, batch=True)
    assert batch is not None and batch.total == D("1.609")  # 0.004 + 0.005 + 1.6
    both = book.price("self-hosted", "llama-audio", counts, AT, service_tier="priority", batch=True)
    assert both is not None and both.total == D("1.635")  # the tier's input (0.03) wins, batch's output (1.6)
    assert both.price_entry == "self-hosted/llama-audio [priority+batch]"
    unknown = book.price("self-hosted", "llama-audio", counts, AT, service_tier="scale")
    assert unknown is not None and unknown.total == D("4.015") and unknown.unpriced_units == ("tier:scale",)


def test_unit_and_custom_prices(book: PriceBook) -> None:
    units = {"input_audio_tokens": 200_000, "output_audio_tokens": 1_000, "cache_audio_read_tokens": 1_000,
             "web_searches": 3, "audio_seconds": 90, "custom.image_1024_hd": 2, "custom.image_1024": 1,
             "custom.unknown": 1}
    cost = book.price("self-hosted", "llama-audio", TokenCounts(input=100), AT, units=units)
    assert cost is not None
    assert cost.unit_pico == {
        "input_audio_tokens": 2_000_000_000_000,  # 200,000 x $10/M (the input tier changes text input only)
        "output_audio_tokens": 20_000_000_000,  # 1,000 x $20/M
        "cache_audio_read_tokens": 2_500_000_000,  # 1,000 x $2.50/M
        "web_searches": 15_000_000_000,  # 3 x $5/K
        "audio_seconds": 15_000_000_000,  # 90 s x $0.6/h
        "custom.image_1024_hd": 160_000_000_000,  # 2 x $0.08
        "custom.image_1024": 40_000_000_000,
    }
    assert cost.unpriced_units == ("custom.unknown",)
    assert cost.by_type["input"] == D("0.0002")  # 100 x $2/M: the call's input (audio included) is over 100k
    flex = book.price("self-hosted", "llama-audio", TokenCounts(), AT, service_tier="flex",
                      units={"input_audio_tokens": 1_000_000, "custom.image_1024": 1})
    assert flex is not None and flex.unit_pico == {"input_audio_tokens": 5 * 10**12, "custom.image_1024": 4 * 10**10}


def test_discount_only_entry_adds_custom_units_to_the_catalog_price(book: PriceBook) -> None:
    cost = book.price("openai", "gpt-4o", TokenCounts(input=1_000_000), AT,
                      units={"custom.moderation_call": 10, "web_searches": 1000})
    assert cost is not None
    assert cost.by_type["input"] == D("2.25")  # $2.50 less 10%
    assert cost.unit_pico == {"custom.moderation_call": 9_000_000_000, "web_searches": 9 * 10**12}  # both -10%
    flex = book.price("openai", "gpt-4o", TokenCounts(input=1_000_000), AT, service_tier="priority")
    assert flex is not None and flex.by_type["input"] == D("3.825")  # catalog priority $4.25 less 10%
    assert flex.price_entry == "openai/gpt-4o (10% off openai/gpt-4o [priority])"


def test_currency_and_discount_apply_to_tiers_and_custom_units(book: PriceBook) -> None:
    # EUR at 0.5 EUR per USD, 20% off: input EUR 2 -> USD 3.2, flex EUR 1 -> USD 1.6, custom EUR 0.5 -> USD 0.8
    standard = book.price("self-hosted", "eur-model", TokenCounts(input=1_000_000), AT, units={"custom.page": 1})
    flex = book.price("self-hosted", "eur-model", TokenCounts(input=1_000_000), AT, service_tier="flex",
                      units={"custom.page": 1})
    assert standard is not None and flex is not None
    assert standard.by_type["input"] == D("3.2") and flex.by_type["input"] == D("1.6")
    assert standard.unit_pico == flex.unit_pico == {"custom.page": 800_000_000_000}


@pytest.mark.parametrize(("text", "message"), [
    ("- {provider: a, model: b, prices: {input_mtok: 1, output_mtok: 1, input_audo_mtok: 2}}",
     "entry 0 (line 1): prices.input_audo_mtok: unknown key"),
    ("- {provider: a, model: b, prices: {input_mtok: 1, output_mtok: 1, web_searches_kcount: -1}}",
     "prices.web_searches_kcount: must be >= 0"),
    ("- {provider: a, model: b, prices: {input_mtok: 1, output_mtok: 1}, service_tiers: {flex: {input_mtok: x}}}",
     "service_tiers.flex.input_mtok: expected a decimal number"),
    ("- {provider: a, model: b, prices: {input_mtok: 1, output_mtok: 1}, service_tiers: {Flex: {input_mtok: 1}}}",
     "a tier name is lower case"),
    ("- {provider: a, model: b, prices: {input_mtok: 1, output_mtok: 1}, service_tiers: {default: {input_mtok: 1}}}",
     "not default, standard or batch"),
    ("- {provider: a, model: b, discount_percent: 5, batch: {input_mtok: 1}}",
     "service_tiers and batch refine the entry's own prices: set prices too"),
    ("- {provider: a, model: b, prices: {input_mtok: 1, output_mtok: 1}, units: {image_hd: 1}}",
     "custom units are named custom.<name>"),
    ("- {provider: a, model: b, prices: {input_mtok: 1, output_mtok: 1, cache_read_mtok: 1, input_audio_mtok: 2}}",
     "cache_read_mtok and input_audio_mtok overlap: price their join cache_audio_read_mtok too"),
])
def test_invalid_context_and_unit_entries(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_overrides(text, "prices.yaml", CurrencyConfig(), "v1")
    assert message in str(raised.value)
    assert str(raised.value).startswith("prices.yaml: entry 0")


def test_a_context_price_that_never_changes_is_fixed(book: PriceBook) -> None:
    """Calls in a context whose price is one plan whatever their time can be counted in bulk (metering.tally)."""
    fixed, plan = book.fixed_price("self-hosted", "eur-model", service_tier="flex")
    quote = book.quote("self-hosted", "eur-model", AT, service_tier="flex")
    assert fixed and quote is not None and plan is quote.plan and quote.flags == ()
    assert book.fixed_price("self-hosted", "eur-model", batch=True) == (False, None)  # flagged: no batch price
    assert book.fixed_price("self-hosted", "llama-audio") == (False, None)  # prompt-length tiers
    fixed, plan = book.fixed_price("self-hosted", "llama-audio", service_tier="flex")  # its input price: no tiers
    assert fixed and plan is book.quote("self-hosted", "llama-audio", AT, service_tier="flex").plan  # type: ignore[union-attr]
    assert book.fixed_price("self-hosted", "llama-audio", service_tier="flex", units=True) == (False, None)
    assert book.fixed_price("openai", "gpt-4o", service_tier="priority") == (False, None)  # variant from a date on
    assert book.fixed_price("self-hosted", "no-such-model", service_tier="flex") == (True, None)  # never priced
