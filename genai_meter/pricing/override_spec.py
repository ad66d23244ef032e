"""The schema of one price override entry, as written in the file (docs/pricing.md "The override file").

Prices are Decimal: quoted strings are exact; YAML numbers are taken through `str()`. Besides the token
classes (`input_mtok` ...), `prices` may name any genai-prices unit price key with its own unit
(`input_audio_mtok` per million audio tokens, `web_searches_kcount` per thousand searches,
`audio_hours` per hour of audio ...); `service_tiers` and `batch` give the prices of a price context,
key by key over `prices`; `units` prices `custom.<name>` units per unit.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictInt,
    field_validator,
    model_validator,
)

from genai_meter.pricing.units import CUSTOM_PREFIX, PRICE_KEY_UNITS, REGISTRY, REQUESTS, UNITS

# Class price keys of the file -> rates.RAW_KEYS key.
CLASS_KEYS = {"input_mtok": "input", "cache_read_mtok": "cache_read", "cache_write_mtok": "cache_write",
              "cache_write_1h_mtok": "cache_write_1h", "output_mtok": "output", "reasoning_mtok": "reasoning"}
# The registry unit each class key prices (the join rule and unit fallbacks see them).
CLASS_KEY_UNITS = {"input_mtok": "input_tokens", "cache_read_mtok": "cache_read_tokens",
                   "cache_write_mtok": "cache_write_tokens", "cache_write_1h_mtok": "cache_write_1h_tokens",
                   "output_mtok": "output_tokens", "reasoning_mtok": "output_reasoning_tokens"}
# genai-prices price keys the file may give besides the class keys: every unit but the classes' and requests.
UNIT_PRICE_KEYS = frozenset(key for key, unit in PRICE_KEY_UNITS.items()
                            if unit not in CLASS_KEY_UNITS.values() and unit not in (REQUESTS, "cache_write_5m_tokens"))
KEY_MARK = "@key "  # a validation message about a key below the validated model: "@key <key>: <message>"
_CUSTOM_NAME = re.compile(r"^custom\.[a-z0-9][a-z0-9_.-]{0,62}$")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(f"expected a decimal number, got {type(value).__name__}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected a decimal number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"expected a finite decimal number, got {value!r}")
    return number


def _effective(value: Any) -> date | datetime | None:
    if value is None or isinstance(value, (date, datetime)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"expected a date (2026-10-01) or an ISO datetime, got {value!r}")


Price = Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0)]
Effective = Annotated[date | datetime | None, PlainValidator(_effective)]


def _unit_prices(extra: dict[str, Any] | None) -> dict[str, Decimal]:
    """The genai-prices unit price keys among a spec's extra keys, validated (ValueError names the key)."""
    out: dict[str, Decimal] = {}
    for key, value in (extra or {}).items():
        if key not in UNIT_PRICE_KEYS:
            raise ValueError(f"{KEY_MARK}{key}: unknown key")
        try:
            price = _decimal(value)
        except ValueError as exc:
            raise ValueError(f"{KEY_MARK}{key}: {exc}") from None
        if price < 0:
            raise ValueError(f"{KEY_MARK}{key}: must be >= 0 (got {value!r})")
        out[key] = price
    return out


def check_joins(price_keys: set[str]) -> None:
    """genai-prices' join rule: two priced units that overlap (neither an ancestor of the other) need
    their join priced, so that every unit has one most specific priced ancestor. Raises ValueError."""
    units = sorted(CLASS_KEY_UNITS.get(key) or PRICE_KEY_UNITS[key] for key in price_keys)
    for i, a in enumerate(units):
        for b in units[i + 1:]:
            da, db = UNITS[a], UNITS[b]
            if not da.is_compatible_with(db) or da.dimensions.items() <= db.dimensions.items() \
                    or db.dimensions.items() <= da.dimensions.items():
                continue
            join = REGISTRY.find_join(da, db)
            if join is None or join.usage_key not in units:
                name = join.price_key if join is not None else "(none registered)"
                raise ValueError(f"{da.price_key} and {db.price_key} overlap: price their join {name} too")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ClassPrices(_Spec):
    """The token-class prices, each optional (USD, or the entry's currency, per million tokens)."""

    input_mtok: Price | None = None
    cache_read_mtok: Price | None = None
    cache_write_mtok: Price | None = None
    cache_write_1h_mtok: Price | None = None
    output_mtok: Price | None = None
    reasoning_mtok: Price | None = None


class TierSpec(_ClassPrices):
    """Prices that replace the entry's when the call's total input tokens exceed `above_input_tokens`."""

    above_input_tokens: StrictInt = Field(ge=0)

    @model_validator(mode="after")
    def _some_price(self) -> TierSpec:
        if all(getattr(self, key) is None for key in CLASS_KEYS):
            raise ValueError(f"a tier needs at least one of {', '.join(CLASS_KEYS)}")
        return self


class PartialSpec(_ClassPrices):
    """The prices of a price context (a service tier, batch): each replaces the entry's price of that key;
    keys not given keep the entry's price. Class keys, per_request and unit price keys; no tiers."""

    model_config = ConfigDict(extra="allow", frozen=True)

    per_request: Price | None = None

    @property
    def unit_prices(self) -> dict[str, Decimal]:
        """The unit price keys given (validated)."""
        return _unit_prices(self.model_extra)

    @model_validator(mode="after")
    def _units_valid(self) -> PartialSpec:
        _ = self.unit_prices  # validates the extra keys
        return self


class PriceSpec(PartialSpec):
    """An entry's own prices: USD (or the entry's currency) per million tokens, per request, per unit."""

    input_mtok: Price
    output_mtok: Price
    tiers: list[TierSpec] = []  # by prompt length, ascending `above_input_tokens`

    @field_validator("tiers")
    @classmethod
    def _ascending(cls, tiers: list[TierSpec]) -> list[TierSpec]:
        starts = [tier.above_input_tokens for tier in tiers]
        if starts != sorted(set(starts)):
            raise ValueError("tiers must have strictly increasing above_input_tokens")
        return tiers

    @model_validator(mode="after")
    def _joins(self) -> PriceSpec:
        keys = {key for key in CLASS_KEYS if getattr(self, key) is not None} | set(self.unit_prices)
        check_joins(keys)
        return self


class EntrySpec(_Spec):
    """One override entry as written in the file."""

    provider: str = Field(min_length=1)  # genai-meter provider id (semconv), e.g. openai, aws.bedrock
    model: str | None = Field(default=None, min_length=1)  # exact model (case-insensitive)
    match: str | None = Field(default=None, min_length=1)  # or a regex that must match the whole model
    from_: Effective = Field(default=None, alias="from")  # effective from this date (UTC) or instant
    prices: PriceSpec | None = None
    service_tiers: dict[str, PartialSpec] = {}  # tier (lower case) -> its prices, key by key over `prices`
    batch: PartialSpec | None = None  # batch API prices, key by key over `prices`
    units: dict[str, Price] = {}  # custom.<name> -> price per unit
    discount_percent: Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0, le=100)] | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")  # currency of `prices` (default USD)
    per_usd: Annotated[Decimal, BeforeValidator(_decimal), Field(gt=0)] | None = None  # units of currency per USD
    note: str | None = None
    source: str | None = None  # provenance, e.g. a contract or a pricing page URL

    @field_validator("service_tiers")
    @classmethod
    def _tier_names(cls, tiers: dict[str, PartialSpec]) -> dict[str, PartialSpec]:
        for name in tiers:
            if name != name.strip().lower() or not name or name in ("default", "standard", "batch"):
                raise ValueError(f"{name!r}: a tier name is lower case and not default, standard or batch "
                                 "(those are the entry's prices and its `batch` key)")
        return tiers

    @field_validator("units")
    @classmethod
    def _custom_names(cls, units: dict[str, Decimal]) -> dict[str, Decimal]:
        for name in units:
            if not _CUSTOM_NAME.match(name):
                raise ValueError(f"{name!r}: custom units are named {CUSTOM_PREFIX}<name> (lower case letters, "
                                 "digits, _ . -); genai-prices units are priced in `prices`")
        return units

    @model_validator(mode="after")
    def _consistent(self) -> EntrySpec:
        if (self.model is None) == (self.match is None):
            raise ValueError("set exactly one of model or match")
        if self.match is not None:
            try:
                re.compile(self.match)
            except re.error as exc:
                raise ValueError(f"match is not a valid regex: {exc}") from None
        if self.prices is None and self.discount_percent is None:
            raise ValueError("set prices, discount_percent or both")
        if (self.service_tiers or self.batch is not None) and self.prices is None:
            raise ValueError("service_tiers and batch refine the entry's own prices: set prices too")
        if self.currency is not None and self.prices is None and not self.units:
            raise ValueError("currency applies to prices and units; this entry has neither")
        if self.per_usd is not None and self.currency in (None, "USD"):
            raise ValueError("per_usd needs a currency other than USD")
        return self
