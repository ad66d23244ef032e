"""Billed units any span can carry, whatever its source: genai-meter's own `genai_meter.usage.<unit>` keys,
Anthropic's 1-hour cache writes as OpenLLMetry records them, and image generation as OpenLIT records it.
Source-specific units (OpenInference's audio tokens, pydantic-ai's details, LangSmith's token details,
Vercel's provider metadata) are read by their source's reader into `Reading.details`.

`genai_meter.usage.<unit>` = quantity meters anything no convention covers: `<unit>` a genai-prices usage
key (`web_searches`, `audio_seconds`, `input_characters`, `input_audio_tokens` ...: priced by the catalog;
token units are parts of the span's token totals, as genai-prices counts them) or any other name, which is
the custom unit `custom.<name>` (priced only by the override file's `units`). A quantity is a non-negative
integer no larger than limits.max_tokens_per_call, else the call is invalid (contract.INVALID_UNIT_COUNT).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from genai_meter.conventions.keys import (
    ANTHROPIC_CACHE_WRITE_1H,
    GEN_AI_REQUEST_CHOICE_COUNT,
    GEN_AI_REQUEST_IMAGE_QUALITY,
    GEN_AI_REQUEST_IMAGE_SIZE,
    GENAI_METER_USAGE_PREFIX,
)
from genai_meter.conventions.units import image_unit, usage_unit
from genai_meter.conventions.values import count_value

_PREFIX_LENGTH = len(GENAI_METER_USAGE_PREFIX)
_OTHER_KEYS = frozenset({ANTHROPIC_CACHE_WRITE_1H, GEN_AI_REQUEST_IMAGE_SIZE})


def unit_keys_of(a: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys of `a` that `common_units` reads (a scan of the keys: spans without a shape plan)."""
    return tuple(k for k in a if k.startswith(GENAI_METER_USAGE_PREFIX) or k in _OTHER_KEYS)


def common_units(a: Mapping[str, Any], keys: tuple[str, ...], details: dict[str, int] | None) -> dict[str, int] | None:
    """`details` (a reader's, not changed) with the units of `keys` added; a unit a reader found already
    keeps the reader's count. None when there are none."""
    found: dict[str, int] = dict(details) if details else {}
    for key in keys:
        if key.startswith(GENAI_METER_USAGE_PREFIX):
            count = count_value(a.get(key))
            if count is not None:
                unit = usage_unit(key[_PREFIX_LENGTH:])
                prior = found.get(unit, 0)  # two names of one unit add up; a bad count stays bad
                found[unit] = min(prior, count) if prior < 0 or count < 0 else prior + count
        elif key == ANTHROPIC_CACHE_WRITE_1H:
            count = count_value(a.get(key))
            if count:
                found.setdefault("cache_write_1h_tokens", count)
        elif key == GEN_AI_REQUEST_IMAGE_SIZE:  # OpenLIT image generation: images of one size and quality
            count = count_value(a.get(GEN_AI_REQUEST_CHOICE_COUNT))
            found.setdefault(image_unit(a.get(key), a.get(GEN_AI_REQUEST_IMAGE_QUALITY)),
                             1 if count is None or count == 0 else count)
    return found or None
