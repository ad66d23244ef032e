"""Billed units beyond the five token classes, as genai-prices defines them.

genai-prices names every billable quantity by a *usage key* (`input_audio_tokens`, `web_searches`,
`audio_seconds`, ...) with a `per` (1,000,000 tokens, 1,000 searches, 3,600 seconds ...) and a set
of dimensions (family, direction, modality, token type ...). A unit is an *ancestor* of another when
its dimensions are a subset of the other's: `input_tokens` is an ancestor of `input_audio_tokens`,
which is an ancestor of `cache_audio_read_tokens`. A unit without a price of its own is billed at the
price of its most specific priced ancestor (genai-prices prices each priced unit's *leaf*, the count
not covered by a more specific priced unit); a unit with no priced ancestor is not priced at all.

genai-meter keeps every count disjoint: the five token classes sit at fixed places of that registry
(`CLASS_UNITS`) and each `LLMCall.units` entry at its own usage key, so a call's cost is a plain sum.
`usage_counts` turns those disjoint counts into genai-prices' nested `Usage` (where `input_tokens`
includes cache and modality tokens) and `to_genai_usage` builds the `Usage` itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import genai_prices
from genai_prices.data_units import unit_data
from genai_prices.units import UnitDef, UnitRegistry

REGISTRY = UnitRegistry(unit_data)
UNITS: Mapping[str, UnitDef] = REGISTRY.units
CUSTOM_PREFIX = "custom."  # `custom.<name>`: a unit only the override file prices, per unit
REQUESTS = "requests"  # genai-prices' per-request fee: genai-meter's `request` cost class, never a unit
# Where each of the five disjoint token classes sits in the registry (1-hour cache writes: CACHE_WRITE_1H).
CLASS_UNITS: dict[str, str] = {
    "input": "input_tokens",  # text input = input - cached - audio - image ..., genai-prices' input leaf
    "cache_read": "cache_read_tokens",
    "cache_write": "cache_write_5m_tokens",
    "output": "output_tokens",
    "reasoning": "output_reasoning_tokens",
}
CACHE_WRITE_1H = "cache_write_1h_tokens"
# genai-prices price key -> usage key (input_mtok -> input_tokens, web_searches_kcount -> web_searches, ...)
PRICE_KEY_UNITS: dict[str, str] = {unit.price_key: key for key, unit in UNITS.items()}
# Units whose counts add to the total input tokens that tiers by prompt length key on.
INPUT_TOKEN_UNITS = frozenset(key for key, unit in UNITS.items() if unit.dimensions.get("family") == "tokens"
                              and unit.dimensions.get("direction") == "input")


def is_ancestor(ancestor: str, unit: str) -> bool:
    """Whether usage key `ancestor` is `unit` or one of its ancestors (both registry keys)."""
    return UNITS[ancestor].dimensions.items() <= UNITS[unit].dimensions.items()


def priced_as(unit: str, priced: Iterable[str]) -> str | None:
    """The unit whose price bills `unit`: itself when priced, else its most specific priced ancestor,
    else None. `priced` are registry usage keys; genai-prices' join rule (two priced units that overlap
    have their join priced too) makes the most specific ancestor unique; if it is not (a file that
    breaks the rule), the one with the most dimensions and then the first in `priced` order wins."""
    if unit not in UNITS:
        return None
    best: str | None = None
    best_depth = -1
    for key in priced:
        if key in UNITS and is_ancestor(key, unit):
            depth = len(UNITS[key].dimensions)
            if depth > best_depth:
                best, best_depth = key, depth
    return best


def input_tokens_of(units: Mapping[str, int]) -> int:
    """The input tokens among `units` (audio, image, cached audio ...): they count toward prompt-length tiers."""
    return sum(count for key, count in units.items() if key in INPUT_TOKEN_UNITS)


def usage_counts(input: int = 0, cache_read: int = 0, cache_write: int = 0, output: int = 0, reasoning: int = 0,
                 *, cache_write_1h: bool = False, units: Mapping[str, int] | None = None) -> dict[str, int]:
    """genai-prices usage counts (every registry usage key but `requests`) of disjoint counts.

    Each count sits at one registry unit (the classes at `CLASS_UNITS`, each of `units` at its own
    key; custom and unknown units have no place there and are left out); a usage key counts every
    count that sits at it or below it. So `input_tokens` = input + cache_read + cache_write + every
    input-token unit, `cache_read_tokens` = cache_read + cache_audio_read_tokens + ..., and
    `output_tokens` = output + reasoning + every output-token unit.
    """
    placed: dict[str, int] = {}
    for key, count in (("input_tokens", input), ("cache_read_tokens", cache_read),
                       (CACHE_WRITE_1H if cache_write_1h else "cache_write_5m_tokens", cache_write),
                       ("output_tokens", output), ("output_reasoning_tokens", reasoning), *(units or {}).items()):
        if count and key in UNITS and key != REQUESTS:
            placed[key] = placed.get(key, 0) + count
    return {key: sum(count for at, count in placed.items() if is_ancestor(key, at))
            for key in UNITS if key != REQUESTS}


def to_genai_usage(input: int = 0, cache_read: int = 0, cache_write: int = 0, output: int = 0, reasoning: int = 0,
                   *, cache_write_1h: bool = False, units: Mapping[str, int] | None = None) -> genai_prices.Usage:
    """Our disjoint classes and units as a genai-prices `Usage` (every usage key given, zeros included,
    so genai-prices never has to infer one): see `usage_counts`."""
    return genai_prices.Usage(**usage_counts(input, cache_read, cache_write, output, reasoning,
                                             cache_write_1h=cache_write_1h, units=units))
