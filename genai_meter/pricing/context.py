"""The price context of a call: the service tier it was served at and whether it went through a batch API.

genai-prices selects *price variants* by a context of string keys (`ModelInfo.get_prices`): OpenAI's
`service_tier` (flex, priority, fast, default), Anthropic's `speed` (fast), and `processing: batch` for
any provider's batch API. A `PriceContext` is genai-meter's normalised view of `LLMCall.service_tier`
and `LLMCall.batch`, with the genai-prices context it stands for and the flags of a context the price
entry has no price for (the call is then priced at the standard price and shown as partly priced).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Tier values that mean the standard price: not reported, OpenAI's "default", Anthropic's "standard".
STANDARD_TIERS = frozenset({"", "default", "standard"})
BATCH = "batch"  # Anthropic reports batch results with service_tier "batch": the batch price
TIER_KEYS = ("service_tier", "speed")  # genai-prices context keys a tier selects variants by
BATCH_KEY, BATCH_VALUE = "processing", "batch"
TIER_FLAG = "tier:"  # Cost.unpriced_units entry: "tier:<tier>", a tier with no price of its own
BATCH_FLAG = "batch"  # Cost.unpriced_units entry: a batch call with no batch price
MAX_TIER_LENGTH = 64  # a longer (span-given) tier is cut in flags and labels


@dataclass(frozen=True, slots=True)
class PriceContext:
    """A normalised price context: `tier` ("" = standard; lower case) and `batch`."""

    tier: str = ""
    batch: bool = False

    @property
    def standard(self) -> bool:
        """No tier and no batch: the standard price applies."""
        return not self.tier and not self.batch

    def as_genai(self) -> dict[str, str]:
        """The genai-prices `price_context` this context stands for (empty for the standard price).

        A tier selects OpenAI's `service_tier` variants; "fast" also selects Anthropic's `speed: fast`."""
        context: dict[str, str] = {}
        if self.tier:
            context["service_tier"] = self.tier
            if self.tier == "fast":
                context["speed"] = "fast"
        if self.batch:
            context[BATCH_KEY] = BATCH_VALUE
        return context

    def selects(self, when: Mapping[str, str]) -> bool:
        """Whether a variant with condition `when` applies in this context (every key must match)."""
        context = self.as_genai()
        return all(context.get(key) == value for key, value in when.items())

    def label(self, tier_priced: bool = True, batch_priced: bool = True) -> str:
        """For price entries, the parts of the context that have a price: "flex", "batch", "flex+batch"."""
        parts = (self.tier[:MAX_TIER_LENGTH] if tier_priced else "", BATCH if self.batch and batch_priced else "")
        return "+".join(part for part in parts if part)

    def flags(self, tier_priced: bool, batch_priced: bool) -> tuple[str, ...]:
        """The Cost.unpriced_units entries of a context whose tier / batch price the entry lacks."""
        flags: list[str] = []
        if self.tier and not tier_priced:
            flags.append(TIER_FLAG + self.tier[:MAX_TIER_LENGTH])
        if self.batch and not batch_priced:
            flags.append(BATCH_FLAG)
        return tuple(flags)


STANDARD = PriceContext()


def context_of(service_tier: str, batch: bool) -> PriceContext:
    """The normalised context of `LLMCall.service_tier` / `.batch`: "", "default" and "standard" are the
    standard tier, "batch" is the batch flag, anything else a tier (lower case, trimmed)."""
    tier = service_tier.strip().lower()
    if tier == BATCH:
        return PriceContext("", True)
    if tier in STANDARD_TIERS:
        tier = ""
    if not tier and not batch:
        return STANDARD
    return PriceContext(tier, batch)


def is_tier_condition(when: Mapping[str, str]) -> bool:
    """Whether a variant's condition is about the tier (service_tier or speed)."""
    return any(key in when for key in TIER_KEYS)


def is_batch_condition(when: Mapping[str, str]) -> bool:
    """Whether a variant's condition is about batch processing."""
    return when.get(BATCH_KEY) == BATCH_VALUE
