"""The price override file: local additions and corrections to the catalog (docs/pricing.md).

A YAML list of entries. Each entry names a provider and a model (exact, or a `match` regex), an
optional effective date (`from`), and either its own `prices` or a `discount_percent` on the catalog
price (or both: a discount on its own prices). Prices are per million tokens (`per_request` per
request), parsed as Decimal: quoted strings are exact; YAML numbers are taken through `str()` (so
`0.15` is Decimal("0.15")). Validation is strict: any problem raises `ConfigError` naming the file,
the entry (0-based index and line) and the key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from genai_meter.config import ConfigError, CurrencyConfig
from genai_meter.pricing.rates import Plan, Steps, build_plan

SOURCE = "overrides"
NO_OVERRIDES = "none"  # overrides_version when no file is configured
ALWAYS = -(1 << 126)  # effective time (ns) of an entry without `from`
_HUNDRED = Decimal(100)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierSpec(_Spec):
    """Prices that replace the entry's when the call's total input tokens exceed `above_input_tokens`."""

    above_input_tokens: StrictInt = Field(ge=0)
    input_mtok: Price | None = None
    cache_read_mtok: Price | None = None
    cache_write_mtok: Price | None = None
    cache_write_1h_mtok: Price | None = None
    output_mtok: Price | None = None
    reasoning_mtok: Price | None = None

    @model_validator(mode="after")
    def _some_price(self) -> TierSpec:
        if all(getattr(self, key) is None for key in _TIER_KEYS):
            raise ValueError(f"a tier needs at least one of {', '.join(_TIER_KEYS)}")
        return self


class PriceSpec(_Spec):
    """An entry's own prices: USD (or the entry's currency) per million tokens, per request."""

    input_mtok: Price
    output_mtok: Price
    cache_read_mtok: Price | None = None  # default: the input price
    cache_write_mtok: Price | None = None  # 5-minute writes; default: the input price
    cache_write_1h_mtok: Price | None = None  # default: the cache-write price
    reasoning_mtok: Price | None = None  # default: the output price
    per_request: Price | None = None  # fee per request
    tiers: list[TierSpec] = []  # by prompt length, ascending `above_input_tokens`

    @field_validator("tiers")
    @classmethod
    def _ascending(cls, tiers: list[TierSpec]) -> list[TierSpec]:
        starts = [tier.above_input_tokens for tier in tiers]
        if starts != sorted(set(starts)):
            raise ValueError("tiers must have strictly increasing above_input_tokens")
        return tiers


class EntrySpec(_Spec):
    """One override entry as written in the file."""

    provider: str = Field(min_length=1)  # genai-meter provider id (semconv), e.g. openai, aws.bedrock
    model: str | None = Field(default=None, min_length=1)  # exact model (case-insensitive)
    match: str | None = Field(default=None, min_length=1)  # or a regex that must match the whole model
    from_: Effective = Field(default=None, alias="from")  # effective from this date (UTC) or instant
    prices: PriceSpec | None = None
    discount_percent: Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0, le=100)] | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")  # currency of `prices` (default USD)
    per_usd: Annotated[Decimal, BeforeValidator(_decimal), Field(gt=0)] | None = None  # units of currency per USD
    note: str | None = None
    source: str | None = None  # provenance, e.g. a contract or a pricing page URL

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
        if self.currency is not None and self.prices is None:
            raise ValueError("currency applies to prices; this entry has none")
        if self.per_usd is not None and self.currency in (None, "USD"):
            raise ValueError("per_usd needs a currency other than USD")
        return self


_TIER_KEYS = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "cache_write_1h_mtok", "output_mtok",
              "reasoning_mtok")
# file key -> rates.RAW_KEYS key
_RAW = {"input_mtok": "input", "cache_read_mtok": "cache_read", "cache_write_mtok": "cache_write",
        "cache_write_1h_mtok": "cache_write_1h", "output_mtok": "output", "reasoning_mtok": "reasoning"}


@dataclass(frozen=True, slots=True)
class OverrideEntry:
    """A validated entry, ready to match calls. Prices are already in USD and discounted."""

    index: int  # 0-based position in the file
    provider: str  # lower case
    model: str | None  # lower case, exact
    pattern: re.Pattern[str] | None  # full match, case-insensitive
    effective_ns: int  # Unix ns from which the entry applies (ALWAYS when no `from`)
    label: str  # provider/model[@from], for price_entry
    version: str  # the `from` date, else the override file's version
    plan: Plan | None  # own prices; None for a discount-only entry
    discount: Decimal | None  # factor (1 - percent/100) for a discount-only entry, applied to the catalog
    discount_percent: Decimal | None
    note: str

    def matches(self, provider: str, refs: tuple[str, ...]) -> bool:
        """Does this entry cover a call to `provider` whose model is any of `refs` (lower case)?"""
        if provider != self.provider:
            return False
        if self.pattern is not None:
            return any(self.pattern.fullmatch(ref) for ref in refs)
        return self.model in refs

    def on_catalog(self, catalog_plan: Plan) -> Plan:
        """This discount-only entry applied to a catalog plan."""
        assert self.discount is not None
        return catalog_plan.scaled(self.discount, source=SOURCE, version=self.version, note=self.note,
                                   entry=f"{self.label} ({self.discount_percent}% off {catalog_plan.entry})")


def file_version(data: bytes) -> str:
    """The overrides_version label of a file's bytes: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(data).hexdigest()[:12]


def _effective_ns(value: date | datetime | None) -> int:
    if value is None:
        return ALWAYS
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(microseconds=1) * 1000


def _raw_prices(spec: PriceSpec) -> dict[str, Steps]:
    raw: dict[str, Steps] = {}
    for key, raw_key in _RAW.items():
        base = getattr(spec, key)  # None: below its first tier a class follows its fallback (e.g. input)
        steps = tuple((tier.above_input_tokens, getattr(tier, key)) for tier in spec.tiers
                      if getattr(tier, key) is not None)
        if base is not None or steps:
            raw[raw_key] = (base, steps)
    if spec.per_request is not None:
        raw["per_request"] = (spec.per_request, ())
    return raw


def _build_entry(index: int, spec: EntrySpec, rate: Decimal, version: str) -> OverrideEntry:
    name = spec.model if spec.model is not None else f"~{spec.match}"
    effective = spec.from_.isoformat() if spec.from_ is not None else None
    label = f"{spec.provider}/{name}" + (f"@{effective}" if effective else "")
    entry_version = effective or version
    note = " ".join(part for part in (spec.note, spec.source) if part)
    factor = (_HUNDRED - spec.discount_percent) / _HUNDRED if spec.discount_percent is not None else Decimal(1)
    plan = None
    if spec.prices is not None:
        plan = build_plan(_raw_prices(spec.prices), source=SOURCE, version=entry_version, entry=label, note=note)
        if spec.discount_percent is not None or rate != 1:
            entry = f"{label} ({spec.discount_percent}% off)" if spec.discount_percent is not None else label
            plan = plan.scaled(factor, rate, entry=entry)
    return OverrideEntry(
        index=index,
        provider=spec.provider.lower(),
        model=spec.model.lower() if spec.model is not None else None,
        pattern=re.compile(spec.match, re.IGNORECASE) if spec.match is not None else None,
        effective_ns=_effective_ns(spec.from_),
        label=label,
        version=entry_version,
        plan=plan,
        discount=factor if spec.prices is None else None,
        discount_percent=spec.discount_percent,
        note=note,
    )


def _key(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if not (isinstance(part, str) and part.startswith("function-"))]
    return ".".join(parts) or "(entry)"


def _message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    text = str(err["msg"]).removeprefix("Value error, ")
    got = err.get("input")
    if err["type"] not in ("missing", "value_error") and not isinstance(got, (dict, list)) and err["loc"]:
        text += f" (got {got!r})"
    return text


def _lines(text: str) -> list[int]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if isinstance(node, yaml.SequenceNode):
        return [item.start_mark.line + 1 for item in node.value]
    return []


def parse_overrides(text: str, source: str, currency: CurrencyConfig, version: str) -> list[OverrideEntry]:
    """Validate the override file's text; raises `ConfigError` naming `source`, the entry and the key.

    `currency` is the config's display currency: an entry priced in that currency without its own
    `per_usd` is converted at the config's rate. Returns the entries in file order.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        raise ConfigError(f"{source}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError(f"{source}: the top level must be a list of price entries, got {type(data).__name__}")
    lines = _lines(text)
    problems: list[str] = []
    entries: list[OverrideEntry] = []
    seen: dict[tuple[str, str | None, str | None, int], int] = {}
    for index, raw in enumerate(data):
        where = f"{source}: entry {index}" + (f" (line {lines[index]})" if index < len(lines) else "")
        if not isinstance(raw, dict):
            problems.append(f"{where}: an entry must be a mapping, got {type(raw).__name__}")
            continue
        try:
            spec = EntrySpec.model_validate(raw)
        except ValidationError as exc:
            problems.extend(f"{where}: {_key(err['loc'])}: {_message(dict(err))}" for err in exc.errors())
            continue
        rate = Decimal(1)
        if spec.currency not in (None, "USD"):
            if spec.per_usd is not None:
                rate = spec.per_usd
            elif spec.currency == currency.code:
                rate = currency.per_usd
            else:
                problems.append(f"{where}: currency: no rate for {spec.currency}: set per_usd on the entry, or "
                                f"pricing.currency {{code: {spec.currency}, per_usd: ...}} in the config")
                continue
        entry = _build_entry(index, spec, rate, version)
        key = (entry.provider, entry.model, spec.match, entry.effective_ns)
        if key in seen:
            problems.append(f"{where}: from: same provider, model and from as entry {seen[key]}")
            continue
        seen[key] = index
        entries.append(entry)
    if problems:
        raise ConfigError("\n".join(problems))
    return entries


def load_overrides(path: Path, currency: CurrencyConfig) -> tuple[list[OverrideEntry], str]:
    """Read and validate an override file; returns (entries, overrides_version). Raises `ConfigError`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read price overrides: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: price overrides must be UTF-8 text") from None
    version = file_version(data)
    return parse_overrides(text, str(path), currency, version), version
