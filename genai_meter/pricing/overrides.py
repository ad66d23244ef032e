"""The price override file: local additions and corrections to the catalog (docs/pricing.md).

A YAML list of entries (schema: override_spec). Each entry names a provider and a model (exact, or a
`match` regex), an optional effective date (`from`), and either its own `prices` or a
`discount_percent` on the catalog price (or both: a discount on its own prices), optionally the prices
of service tiers and of batch calls, and the prices of custom units. Validation is strict: any
problem raises `ConfigError` naming the file, the entry (0-based index and line) and the key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from genai_meter.config import ConfigError, CurrencyConfig
from genai_meter.pricing.context import PriceContext
from genai_meter.pricing.override_spec import CLASS_KEYS, KEY_MARK, EntrySpec, PartialSpec, PriceSpec
from genai_meter.pricing.rates import Plan, Steps, build_plan
from genai_meter.pricing.unit_prices import UnitSteps, UnitTable
from genai_meter.pricing.units import PRICE_KEY_UNITS

SOURCE = "overrides"
NO_OVERRIDES = "none"  # overrides_version when no file is configured
ALWAYS = -(1 << 126)  # effective time (ns) of an entry without `from`
_HUNDRED = Decimal(100)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    # what context plans are built from (own prices, in the file's currency, before discount and rate)
    spec: PriceSpec | None = None
    tiers: dict[str, PartialSpec] = field(default_factory=dict)
    batch: PartialSpec | None = None
    custom: dict[str, Decimal] = field(default_factory=dict)  # custom units, USD per unit, discounted
    factor: Decimal = Decimal(1)  # the discount factor of own prices
    rate: Decimal = Decimal(1)  # units of the file's currency per USD

    def matches(self, provider: str, refs: tuple[str, ...]) -> bool:
        """Does this entry cover a call to `provider` whose model is any of `refs` (lower case)?"""
        if provider != self.provider:
            return False
        if self.pattern is not None:
            return any(self.pattern.fullmatch(ref) for ref in refs)
        return self.model in refs

    def on_catalog(self, catalog_plan: Plan) -> Plan:
        """This discount-only entry applied to a catalog plan (its custom units added)."""
        assert self.discount is not None
        plan = catalog_plan.scaled(self.discount, source=SOURCE, version=self.version, note=self.note,
                                   entry=f"{self.label} ({self.discount_percent}% off {catalog_plan.entry})")
        return plan.with_custom(self.custom)

    def plan_in(self, context: PriceContext) -> tuple[Plan, tuple[str, ...]] | None:
        """This entry's own plan in `context` and the context's flags (a tier or batch the entry has no
        prices for: its standard prices apply); None for a discount-only entry."""
        if self.plan is None:
            return None
        if context.standard:
            return self.plan, ()
        tier = self.tiers.get(context.tier) if context.tier else None
        batch = self.batch if context.batch else None
        flags = context.flags(tier is not None, batch is not None)
        if tier is None and batch is None:
            return self.plan, flags
        assert self.spec is not None
        raw, units = _own_prices(self.spec)
        for partial in (batch, tier):  # the tier's prices win over batch's where both give a key
            if partial is not None:
                _apply(partial, raw, units)
        entry = f"{self.plan.entry} [{context.label(tier is not None, batch is not None)}]"
        plan = build_plan(raw, source=SOURCE, version=self.version, entry=entry, note=self.note,
                          units=UnitTable(units))
        if self.factor != 1 or self.rate != 1:
            plan = plan.scaled(self.factor, self.rate)
        return plan.with_custom(self.custom), flags  # custom units are in USD and discounted already


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


def _own_prices(spec: PriceSpec) -> tuple[dict[str, Steps], dict[str, UnitSteps]]:
    """An entry's prices as raw class prices (rates.build_plan) and unit prices (unit_prices.UnitTable)."""
    raw: dict[str, Steps] = {}
    units: dict[str, UnitSteps] = {}
    for key, raw_key in CLASS_KEYS.items():
        base = getattr(spec, key)  # None: below its first tier a class follows its fallback (e.g. input)
        steps = tuple((tier.above_input_tokens, getattr(tier, key)) for tier in spec.tiers
                      if getattr(tier, key) is not None)
        if base is not None or steps:
            raw[raw_key] = (base, steps)
    if spec.per_request is not None:
        raw["per_request"] = (spec.per_request, ())
    _unit_steps(raw, units)
    for key, price in spec.unit_prices.items():
        units[PRICE_KEY_UNITS[key]] = (price, ())
    return raw, units


def _unit_steps(raw: dict[str, Steps], units: dict[str, UnitSteps]) -> None:
    """The class prices as registry units too: a unit without its own price falls back to them."""
    for raw_key, unit in (("input", "input_tokens"), ("cache_read", "cache_read_tokens"),
                          ("cache_write", "cache_write_tokens"), ("cache_write_1h", "cache_write_1h_tokens"),
                          ("output", "output_tokens"), ("reasoning", "output_reasoning_tokens")):
        steps = raw.get(raw_key)
        if steps is not None and steps[0] is not None:
            units[unit] = (steps[0], steps[1])


def _apply(partial: PartialSpec, raw: dict[str, Steps], units: dict[str, UnitSteps]) -> None:
    """A context's prices over an entry's: each given key replaces that price (its tiers too)."""
    for key, raw_key in CLASS_KEYS.items():
        value = getattr(partial, key)
        if value is not None:
            raw[raw_key] = (value, ())
    if partial.per_request is not None:
        raw["per_request"] = (partial.per_request, ())
    _unit_steps(raw, units)
    for key, price in partial.unit_prices.items():
        units[PRICE_KEY_UNITS[key]] = (price, ())


def _build_entry(index: int, spec: EntrySpec, rate: Decimal, version: str) -> OverrideEntry:
    name = spec.model if spec.model is not None else f"~{spec.match}"
    effective = spec.from_.isoformat() if spec.from_ is not None else None
    label = f"{spec.provider}/{name}" + (f"@{effective}" if effective else "")
    entry_version = effective or version
    note = " ".join(part for part in (spec.note, spec.source) if part)
    factor = (_HUNDRED - spec.discount_percent) / _HUNDRED if spec.discount_percent is not None else Decimal(1)
    custom = {unit: price * factor / rate for unit, price in spec.units.items()}
    plan = None
    if spec.prices is not None:
        raw, units = _own_prices(spec.prices)
        plan = build_plan(raw, source=SOURCE, version=entry_version, entry=label, note=note, units=UnitTable(units))
        if spec.discount_percent is not None or rate != 1:
            entry = f"{label} ({spec.discount_percent}% off)" if spec.discount_percent is not None else label
            plan = plan.scaled(factor, rate, entry=entry)
        plan = plan.with_custom(custom)  # custom units are in USD and discounted already
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
        spec=spec.prices,
        tiers=dict(spec.service_tiers),
        batch=spec.batch,
        custom=custom,
        factor=factor,
        rate=rate,
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


def _problem(err: dict[str, Any]) -> str:
    """"key.path: message"; a message about a key below the error's place (KEY_MARK) names that key."""
    key, text = _key(err["loc"]), _message(err)
    if text.startswith(KEY_MARK):
        sub, _, text = text[len(KEY_MARK):].partition(": ")
        key = f"{key}.{sub}" if key != "(entry)" else sub
    return f"{key}: {text}"


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
            problems.extend(f"{where}: {_problem(dict(err))}" for err in exc.errors())
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
