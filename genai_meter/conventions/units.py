"""Billed units beyond the five token classes: their names, and the split of a span's nested counts.

Sources report modality and cache details *inside* their totals, as genai-prices' `Usage` counts them:
audio input tokens are a part of the input tokens, cached audio reads a part of both the cache reads and
the audio input, 1-hour cache writes a part of the cache writes, audio output a part of the output.
Readers collect such counts in `Reading.details`, keyed by genai-prices usage key (`input_audio_tokens`,
`cache_audio_read_tokens`, `cache_write_1h_tokens`, `output_image_tokens`, ...), with quantities that are
not tokens (`web_searches`, `audio_seconds`, `custom.<name>`) beside them.

`split_units` makes them disjoint, as `LLMCall.units` holds them: each token detail keeps only its own
part (its count minus the details below it: audio input minus cached audio reads) and that part is taken
out of the class it belongs to, so the five classes hold text tokens only (text input = input - cached -
audio - image ..., as genai-prices defines it) and classes plus units still add up to what the span
reported. A detail larger than what is left of its class is clamped to it (the span's totals win), as
cache counts are clamped in `reading.split_counts`.
"""

from __future__ import annotations

import re

from genai_meter import contract
from genai_meter.records import TokenCounts

_DIMENSIONS = contract.UNIT_DIMENSIONS
_CUSTOM = contract.CUSTOM_UNIT_PREFIX
_NAME_BAD = re.compile(r"[^a-z0-9_.-]")


def custom_unit(name: str) -> str:
    """`custom.<name>` for a name no registry unit has: lower case, other characters than letters, digits,
    `_ . -` replaced by `_`, cut to contract.MAX_UNIT_NAME_LENGTH (so it stays a bounded, valid name)."""
    text = name.strip().lower()
    if text.startswith(_CUSTOM):
        text = text[len(_CUSTOM):]
    text = _NAME_BAD.sub("_", text)[: contract.MAX_UNIT_NAME_LENGTH]
    return _CUSTOM + (text or "_")


def usage_unit(name: str) -> str:
    """The unit of a `genai_meter.usage.<name>` attribute: the genai-prices usage key `name` when it is one
    (but the keys the five classes stand for, and `requests`), else `custom.<name>`."""
    if name in contract.REGISTRY_UNITS and name not in contract.CLASS_UNIT_KEYS:
        return name
    return custom_unit(name)


def image_unit(size: object, quality: object) -> str:
    """The custom unit of a generated image: `custom.image`, `_<size>` and `_<quality>` when given
    (`custom.image_1024x1024_hd`); priced per image by the override file (docs/pricing.md)."""
    parts = ["image"]
    for value in (size, quality):
        if isinstance(value, str) and value.strip() and value.strip().lower() not in ("auto", "none"):
            parts.append(value.strip().lower())
    return custom_unit("_".join(parts))


def _class_of(unit: str) -> str:
    """The token class a token unit's tokens are counted in before the split."""
    dims = _DIMENSIONS[unit]
    token_type = dims.get("token_type")
    if dims["direction"] == "input":
        return token_type if token_type in ("cache_read", "cache_write") else "input"
    return "reasoning" if token_type == "reasoning" else "output"


def _below(unit: str, other: str) -> bool:
    """Whether registry unit `other` is a strict descendant of `unit` (its dimensions a strict superset)."""
    return other != unit and _DIMENSIONS[unit].items() <= _DIMENSIONS[other].items()


def split_units(tokens: TokenCounts, details: dict[str, int]) -> dict[str, int]:
    """The disjoint units of a call whose nested `details` (non-negative counts by unit) were reported
    beside `tokens` (the five classes, as split from the span's totals): `tokens` is reduced in place by
    each token unit's own part. Units with a zero count are left out."""
    units: dict[str, int] = {}
    token_keys = [k for k in details if k in contract.TOKEN_UNITS and k not in contract.CLASS_UNIT_KEYS]
    for key in token_keys:
        below = [d for d in token_keys if _below(key, d)]
        nearest = [d for d in below if not any(_below(e, d) for e in below)]
        own = details[key] - sum(details[d] for d in nearest)
        if own <= 0:
            continue
        name = _class_of(key)
        left = getattr(tokens, name)
        if own > left:
            own = left
        if own:
            setattr(tokens, name, left - own)
            units[key] = own
    for key, count in details.items():
        if count and key not in contract.TOKEN_UNITS:
            units[key] = count
    return units


def out_of_range(details: dict[str, int], ceiling: int) -> bool:
    """Whether a unit quantity is no count (negative: values.count_value's BAD_COUNT) or above `ceiling`
    (limits.max_tokens_per_call), or there are more than contract.MAX_UNITS_PER_CALL units: the call is
    invalid (contract.INVALID_UNIT_COUNT)."""
    if len(details) > contract.MAX_UNITS_PER_CALL:
        return True
    return any(not 0 <= n <= ceiling for n in details.values())


# Token modalities a source reports when a call has them (absent: none of that modality); every other source
# reports totals only, so a model that bills a modality apart is priced as text from its spans (an estimate)
REPORTED_MODALITIES: dict[str, frozenset[str]] = {
    "openinference": frozenset({"audio"}),  # llm.token_count.prompt_details.audio / completion_details.audio
    "pydantic_ai": frozenset({"audio", "image", "video"}),  # gen_ai.usage.details.*
    "langsmith": frozenset({"audio"}),  # input / output token details
}
MODALITIES: frozenset[str] = frozenset({"audio", "image", "video"})
# The token units of each modality whose own price makes a model bill that modality apart
MODALITY_UNITS: dict[str, tuple[str, ...]] = {
    modality: tuple(k for k in sorted(contract.TOKEN_UNITS) if _DIMENSIONS[k].get("modality") == modality
                    and "token_type" not in _DIMENSIONS[k])
    for modality in sorted(MODALITIES)
}


def unreported_modalities(source: str, units: dict[str, int]) -> frozenset[str]:
    """The modalities neither `source` nor the call's own units report (their tokens, if any, are in the
    text classes)."""
    missing = MODALITIES - REPORTED_MODALITIES.get(source, frozenset())
    if units and missing:
        missing -= {_DIMENSIONS[k].get("modality") for k in units if k in _DIMENSIONS}
    return missing
