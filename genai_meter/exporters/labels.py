"""Label resolution: raw call values -> bounded exported label values.

Per dimension (docs/metrics.md, Cardinality): values of the allowlist are always kept; other values
are kept until `max_values` distinct exported values exist, later ones become `__overflow__`;
`hash: true` exports the first 16 hex digits of the value's SHA-256 (applied before the cap, so
the cap counts hashed values); every value is cut to `limits.max_label_value_length`.
An absent dimension exports the empty value (Prometheus reads it as "label not set") and never
consumes the cap. Base labels (service_name, environment, provider, model, operation, status) are
cut to the same length and an empty one becomes `unknown`; they are bounded by the per-metric series
cap instead (genai_meter.exporters.series).

Not thread-safe: the owner (UsageMetrics) calls it under its lock. Memory is bounded: each
dimension remembers at most `max_values + len(allow)` values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from genai_meter import contract
from genai_meter.config import Config, DimensionConfig
from genai_meter.contract import OVERFLOW, UNKNOWN
from genai_meter.records import LLMCall

HASH_HEX_CHARS = 16  # exported length of a hashed value
_TIERS = frozenset(contract.SERVICE_TIERS)


def tier_label(service_tier: str, batch: bool) -> str:
    """The `service_tier` label of a call: its tier (bounded by contract.SERVICE_TIERS, anything else
    `unknown`), `batch` for a batch call at the standard tier, `default` when the span said nothing."""
    if not service_tier or service_tier == contract.TIER_DEFAULT:
        return contract.TIER_BATCH if batch else contract.TIER_DEFAULT
    return service_tier if service_tier in _TIERS else contract.TIER_UNKNOWN


def hash_value(value: str) -> str:
    """The exported form of a value of a `hash: true` dimension."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_HEX_CHARS]


class Dimension:
    """Cap, allowlist, hashing and length limit of one attribution dimension."""

    __slots__ = ("name", "max_values", "allow", "hashed", "max_len", "_known", "_exported", "_capped")

    def __init__(self, name: str, config: DimensionConfig, max_len: int) -> None:
        self.name = name
        self.max_values = config.max_values
        self.allow = frozenset(config.allow)
        self.hashed = config.hash
        self.max_len = max_len
        self._known: dict[str, str] = {}  # raw value (short ones only) -> exported value
        self._exported: set[str] = set()  # exported values that consume the cap
        self._capped = 0  # how many of them; == len(_exported)

    def _export(self, raw: str) -> str:
        value = hash_value(raw) if self.hashed else raw
        return value[: self.max_len]

    def resolve(self, raw: str | None) -> str | None:
        """The exported value of `raw`, or None when the cap folds it into __overflow__."""
        if not raw:
            return ""
        if not isinstance(raw, str):
            raw = str(raw)
        known = self._known.get(raw)
        if known is not None:
            return known
        exported = self._export(raw)
        if raw in self.allow:
            pass  # always kept, does not consume the cap
        elif exported not in self._exported:
            if self._capped >= self.max_values:
                return None
            self._exported.add(exported)
            self._capped += 1
        if len(raw) <= self.max_len:  # remember short raw values only: memory stays bounded
            self._known[raw] = exported
        return exported

    @property
    def distinct(self) -> int:
        """Distinct exported values that consume the cap (allowlisted values excluded)."""
        return self._capped


class LabelResolver:
    """Turns an `LLMCall` into the exported call-label tuple of the contract.

    The tuple's order is `Contract.call_labels`: service_name, environment, provider, model,
    operation, service_tier, then the active dimensions in sorted order.
    """

    def __init__(self, config: Config) -> None:
        self.max_len = config.limits.max_label_value_length
        self.dimensions: tuple[Dimension, ...] = tuple(
            Dimension(name, dim, self.max_len) for name, dim in config.active_dimensions.items()
        )

    def base(self, value: str) -> str:
        """A base label value: cut to the length limit; empty -> `unknown`."""
        if not value:
            return UNKNOWN
        return value if len(value) <= self.max_len else value[: self.max_len]

    def call_labels(self, call: LLMCall) -> tuple[tuple[str, ...], Sequence[str]]:
        """(exported call labels, names of the dimensions whose value overflowed)."""
        base, ml = self.base, self.max_len
        values = [v if v and len(v) <= ml else base(v)
                  for v in (call.service, call.environment, call.provider, call.model, call.operation)]
        values.append(tier_label(call.service_tier, call.batch))
        overflowed: list[str] = []
        raw_dims = call.dimensions
        for dim in self.dimensions:
            exported = dim.resolve(raw_dims.get(dim.name))
            if exported is None:
                overflowed.append(dim.name)
                exported = OVERFLOW
            values.append(exported)
        return tuple(values), overflowed
