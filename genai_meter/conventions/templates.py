"""Call templates: which values decide a call, for the shapes where few values do.

For a shape whose plan takes the gen_ai shortcut (`plans.read_gen_ai_planned`) and carries only the
current semconv token keys (no alternate or total keys, no time-to-first-chunk key, no key naming
1-hour cache writes), `Conventions.classify` makes calls that differ only in their per-call numbers
when these are equal:

- the values of `TemplateKeys.value_keys`: operation, provider, models, error type, request model, the
  service tier and batch keys (the price context), the shape's dimension keys and the keys batch rules
  read;
- the span's error status and its resource's labels.

The per-call numbers are the token counts (each class from its one key, `TOKEN_KEYS`), the duration,
the time to first token (from events) and the end time. `Conventions.template_key` builds the key,
`Conventions.from_template` the call; `metering.templates` caches one call per key. Enforced by
tests/conventions/test_call_templates.py, which records every key classification reads for such
shapes and compares both paths on every fixture and on generated spans; and at run time, where a
template is only kept when it rebuilds its own first call exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from genai_meter.conventions.attribution import REQUEST_MODEL_KEYS
from genai_meter.conventions.keys import (
    ALTERNATE_TOKEN_KEYS,
    ERROR_TYPE,
    GEN_AI_OPERATION_NAME,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_SYSTEM,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
    GENAI_METER_BATCH,
    TIER_KEYS,
)

# Keys whose values the shortcut classification reads besides the token counts and dimensions.
VALUE_KEYS: frozenset[str] = frozenset({
    GEN_AI_OPERATION_NAME, GEN_AI_PROVIDER_NAME, GEN_AI_SYSTEM, GEN_AI_RESPONSE_MODEL, GEN_AI_REQUEST_MODEL,
    ERROR_TYPE, *REQUEST_MODEL_KEYS, *TIER_KEYS, GENAI_METER_BATCH,
})
# The one key of each token class, in `split_counts` argument order: input, output, cache read,
# cache write, reasoning.
TOKEN_KEYS: tuple[str, ...] = (
    GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
)


@dataclass(frozen=True, slots=True)
class TemplateKeys:
    """The keys of one templated shape whose values decide its calls, in a fixed order."""

    value_keys: tuple[str, ...]

    def values(self, a: Mapping[str, Any]) -> tuple[Any, ...]:
        """The deciding values of one span of the shape (its attributes `a`)."""
        return tuple(map(a.get, self.value_keys))


def template_keys(present: frozenset[str], keys: tuple[str, ...], deciding_keys: frozenset[str], *,
                  shortcut: bool, one_hour_keys: bool, ttft_key: bool) -> TemplateKeys | None:
    """The `TemplateKeys` of a shape (its `keys` in span order), or None when it takes no template."""
    if not shortcut or one_hour_keys or ttft_key or not present.isdisjoint(ALTERNATE_TOKEN_KEYS):
        return None
    deciding = VALUE_KEYS | deciding_keys
    return TemplateKeys(tuple(k for k in keys if k in deciding))


def token_counts(a: Mapping[str, Any], ceiling: int) -> tuple[int | None, ...] | None:
    """The five raw counts of a templated span (`TOKEN_KEYS` order, None = absent), or None when one
    is no count in 0..ceiling (such a span takes the full classifier, which judges it)."""
    counts = tuple(map(a.get, TOKEN_KEYS))
    for n in counts:
        if n is not None and (type(n) is not int or not 0 <= n <= ceiling):
            return None
    return counts
