"""The price context a span states: the service tier the provider answered with (else asked for), and whether
the call went through a batch API (the span says so, or a configured rule does: `pricing.batch_rules`).

Tiers are normalised to a bounded set (`contract.SERVICE_TIERS`), so a client cannot explode a label or the
ledger: "standard" (Anthropic) is "default"; a request value that names no tier (OpenAI's "auto",
Anthropic's "auto" / "standard_only") says nothing; "batch" (Anthropic's answer for batch results) is the
batch flag at the default tier; any other text is "unknown", which the pricing flags as a tier without a
price (docs/pricing.md), never as the standard price silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from genai_meter import contract
from genai_meter.config import BatchRule
from genai_meter.conventions.keys import GENAI_METER_BATCH, TIER_KEYS

# Tier values as spans write them (lower-cased, trimmed) -> LLMCall.service_tier ("" = the span says nothing)
TIER_VALUES: dict[str, str] = {
    "default": contract.TIER_DEFAULT, "standard": contract.TIER_DEFAULT, "on_demand": contract.TIER_DEFAULT,
    "flex": "flex", "priority": "priority", "scale": "scale", "fast": "fast",
    "auto": "", "standard_only": "", "": "",
    contract.TIER_BATCH: contract.TIER_BATCH,
}
MAX_TIER_TEXT = 64  # a longer value is no tier name


def normal_tier(value: object) -> str:
    """A span's tier value as LLMCall.service_tier: "" (says nothing), a tier of contract.SERVICE_TIERS or
    "unknown". "batch" is returned as is (the caller turns it into the batch flag)."""
    if type(value) is not str or len(value) > MAX_TIER_TEXT:
        return "" if value is None else contract.TIER_UNKNOWN
    tier = TIER_VALUES.get(value)
    if tier is None:
        tier = TIER_VALUES.get(value.strip().lower(), contract.TIER_UNKNOWN)
    return tier


def tier_of(a: Mapping[str, Any], keys: tuple[str, ...] = TIER_KEYS) -> str:
    """The first of `keys` (response keys before request keys) that states a tier, normalised; "" when none does."""
    for key in keys:
        value = a.get(key)
        if value is not None:
            tier = normal_tier(value)
            if tier:
                return tier
    return ""


def says_batch(value: object) -> bool:
    """Whether a `genai_meter.batch` value says the call was a batch call (true, "true", 1)."""
    if value is True or value == 1:
        return True
    return type(value) is str and value.strip().lower() in ("true", "1", "yes")


class BatchRules:
    """`pricing.batch_rules`: a call matching any rule is a batch call. Thread-safe (immutable)."""

    def __init__(self, rules: list[BatchRule]) -> None:
        self.rules = tuple(rule.match for rule in rules)
        # attribute keys some rule reads: they decide a call (conventions.templates)
        self.attribute_keys: tuple[str, ...] = tuple(dict.fromkeys(k for m in self.rules for k in m.attributes))

    def __bool__(self) -> bool:
        return bool(self.rules)

    def matches(self, service: str, environment: str, attributes: Mapping[str, Any],
                resource: Mapping[str, Any]) -> bool:
        """Whether a call of `service` / `environment` with these span and resource attributes is a batch call."""
        for match in self.rules:
            if match.service is not None and not fnmatchcase(service, match.service):
                continue
            if match.environment is not None and not fnmatchcase(environment, match.environment):
                continue
            if all(_attribute_matches(attributes, resource, key, pattern)
                   for key, pattern in match.attributes.items()):
                return True
        return False


def _attribute_matches(attributes: Mapping[str, Any], resource: Mapping[str, Any], key: str, pattern: str) -> bool:
    value = attributes.get(key)
    if value is None:
        value = resource.get(key)
    if value is None:
        return False
    return fnmatchcase(value if type(value) is str else str(value), pattern)


def span_says_batch(a: Mapping[str, Any]) -> bool:
    """`genai_meter.batch` on the span."""
    value = a.get(GENAI_METER_BATCH)
    return value is not None and says_batch(value)
