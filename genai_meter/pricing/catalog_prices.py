"""One matched catalog model's prices: its periods, its price variants, and the `Plan` for a call's time
and price context.

Price periods (genai-prices `ConditionalPrice`: start dates, time-of-day windows) are selected with
integer comparisons on the call's end time (Unix ns), following genai-prices exactly: the last period
whose constraint is active wins; when none is, the first period applies. Price variants
(`PriceVariant`: a `when` condition on the price context, an optional constraint, partial prices) are
applied as `ModelInfo.get_prices` does: the variants whose condition the context meets and whose
constraint is active are tried first to last, independently for each price key, over the period's
prices. A model found through a fallback provider (Azure -> OpenAI ...) takes no variants, as in
genai-prices: its provider's tier rates are not the fallback provider's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

from genai_prices import types as gp

from genai_meter.pricing.context import PriceContext, is_batch_condition, is_tier_condition
from genai_meter.pricing.rates import Plan, Steps, build_plan
from genai_meter.pricing.unit_prices import UnitSteps, UnitTable
from genai_meter.pricing.units import PRICE_KEY_UNITS, REQUESTS

# genai-prices price key -> our raw key (rates.RAW_KEYS); requests_kcount is converted to per request.
PRICE_KEYS: dict[str, str] = {
    "input_mtok": "input",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "cache_write_5m_mtok": "cache_write_5m",
    "cache_write_1h_mtok": "cache_write_1h",
    "output_mtok": "output",
    "output_reasoning_mtok": "reasoning",
}
PlanFlags = tuple[Plan, tuple[str, ...]]  # a plan and the flags of a context it has no price for
# (genai-prices provider id, model id) -> (usage key, least count billed per call): genai-prices' own rule
MINIMUMS: dict[tuple[str, str], tuple[str, int]] = {
    ("groq", "whisper-large-v3"): ("audio_seconds", 10),
    ("groq", "whisper-large-v3-turbo"): ("audio_seconds", 10),
}
_THOUSAND = Decimal(1000)
_DAY_US = 86_400_000_000
_ALWAYS, _FROM, _TIME_OF_DAY = 0, 1, 2
_NEVER = 1 << 126


def utc_midnight_ns(day: date) -> int:
    """UTC midnight of `day` as Unix ns."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000_000


def _utc_micros_of_day(value: time) -> int:
    if value.tzinfo is not None:
        value = datetime.combine(date(1970, 1, 1), value).astimezone(UTC).time()
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


def _hhmm(value: time) -> str:
    micros = _utc_micros_of_day(value) // 1_000_000
    return f"{micros // 3600:02d}:{micros // 60 % 60:02d}"


@dataclass(frozen=True, slots=True)
class Window:
    """A genai-prices constraint as integer bounds on the end time."""

    kind: int  # _ALWAYS, _FROM (a <= end_ns) or _TIME_OF_DAY (a <= micros of day < b, wrapping)
    a: int = 0
    b: int = 0
    suffix: str = ""  # for price entries: "@2025-06-10", "@00:30-16:30UTC"

    @classmethod
    def of(cls, constraint: object) -> Window:
        if isinstance(constraint, gp.StartDateConstraint):
            return cls(_FROM, utc_midnight_ns(constraint.start_date), 0, f"@{constraint.start_date.isoformat()}")
        if isinstance(constraint, gp.TimeOfDateConstraint):
            return cls(_TIME_OF_DAY, _utc_micros_of_day(constraint.start_time), _utc_micros_of_day(constraint.end_time),
                       f"@{_hhmm(constraint.start_time)}-{_hhmm(constraint.end_time)}UTC")
        if constraint is None:
            return cls(_ALWAYS)
        return cls(_FROM, _NEVER)  # a constraint type this version does not know: never active

    def active(self, end_ns: int) -> bool:
        if self.kind == _ALWAYS:
            return True
        if self.kind == _FROM:
            return end_ns >= self.a
        micros = (end_ns // 1000) % _DAY_US
        if self.b < self.a:
            return micros >= self.a or micros < self.b
        return self.a <= micros < self.b


def _steps(value: Decimal | gp.TieredPrices, scale: Decimal | None = None) -> Steps:
    if isinstance(value, gp.TieredPrices):
        base, tiers = value.base, tuple((tier.start, tier.price) for tier in value.tiers)
    else:
        base, tiers = value, ()
    if scale is not None:
        base, tiers = base / scale, tuple((start, price / scale) for start, price in tiers)
    return base, tiers


def price_values(model_price: gp.ModelPrice) -> dict[str, Decimal | gp.TieredPrices]:
    """The prices a ModelPrice gives, by genai-prices price key, in its order."""
    return {key: value for key, value in model_price.__dict__.items() if not key.startswith("_") and value is not None}


def plan_of(values: dict[str, Decimal | gp.TieredPrices], *, version: str, entry: str,
            minimum: tuple[str, int] | None) -> Plan:
    """A `Plan` of genai-prices prices: the six classes and a unit table of every registry unit priced."""
    raw: dict[str, Steps] = {}
    units: dict[str, UnitSteps] = {}
    for key, value in values.items():
        if key in PRICE_KEYS:
            raw[PRICE_KEYS[key]] = _steps(value)
        elif key == "requests_kcount":
            raw["per_request"] = _steps(value, _THOUSAND)
        usage_key = PRICE_KEY_UNITS.get(key)
        if usage_key is not None and usage_key != REQUESTS:
            base, tiers = _steps(value)
            assert base is not None
            units[usage_key] = (base, tiers)
    return build_plan(raw, source="genai-prices", version=version, entry=entry,
                      units=UnitTable(units, {}, minimum))


@dataclass(frozen=True, slots=True)
class Period:
    """One genai-prices price period: its window, its prices and their standard plan."""

    window: Window
    values: dict[str, Decimal | gp.TieredPrices]
    plan: Plan


@dataclass(frozen=True, slots=True)
class Variant:
    """One genai-prices price variant: its condition, window and partial prices."""

    when: dict[str, str]
    window: Window
    values: dict[str, Decimal | gp.TieredPrices]


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A catalog model matched for one (provider, model ref), with its price periods and variants."""

    provider_id: str  # genai-prices provider id
    model_id: str  # genai-prices model id
    periods: tuple[Period, ...]  # in catalog order
    variants: tuple[Variant, ...] = ()  # () for a model found through a fallback provider
    version: str = ""
    minimum: tuple[str, int] | None = None
    # (context, period index, active variants) -> (plan, flags); built on first use, shared by threads
    _plans: dict[tuple[PriceContext, int, tuple[bool, ...]], PlanFlags] = field(
        default_factory=dict, repr=False, compare=False)
    _windows: tuple[Window, ...] = field(init=False, repr=False, compare=False)  # the periods' windows

    def __post_init__(self) -> None:
        object.__setattr__(self, "_windows", tuple(period.window for period in self.periods))

    def index_at(self, end_ns: int) -> int:
        """The index of the period in force at `end_ns` (genai-prices: the last active, else the first)."""
        windows = self._windows
        for index in range(len(windows) - 1, -1, -1):
            if windows[index].active(end_ns):
                return index
        return 0

    def plan_at(self, end_ns: int) -> Plan:
        """The standard plan in force at `end_ns`."""
        return self.periods[self.index_at(end_ns)].plan

    @property
    def fixed(self) -> Plan | None:
        """The one plan when prices never change with time, else None."""
        if len(self.periods) == 1:
            return self.periods[0].plan
        return None

    def fixed_in(self, context: PriceContext, matching: tuple[Variant, ...]) -> PlanFlags | None:
        """The one plan and flags in `context` when they never change with time (one period, every variant
        `matching` selects always active), else None."""
        if len(self.periods) != 1 or any(variant.window.kind != _ALWAYS for variant in matching):
            return None
        return self.context_plan(0, context, matching)

    def matching(self, context: PriceContext) -> tuple[Variant, ...]:
        """The variants whose condition `context` meets, in catalog order (none for the standard context)."""
        if context.standard:
            return ()
        return tuple(variant for variant in self.variants if context.selects(variant.when))

    def context_plan(self, end_ns: int, context: PriceContext, matching: tuple[Variant, ...]) -> PlanFlags:
        """The plan in force at `end_ns` in `context` (whose variants are `matching`), and the context's
        flags (a tier or batch with no variant in force: the standard price applies to it)."""
        index = self.index_at(end_ns)
        if context.standard:
            return self.periods[index].plan, ()
        active = tuple([variant.window.active(end_ns) for variant in matching])
        key = (context, index, active)
        found = self._plans.get(key)
        if found is None:
            found = self._build(context, index, [v for v, on in zip(matching, active) if on])
            if len(self._plans) < 1024:
                self._plans[key] = found
        return found

    def _build(self, context: PriceContext, index: int, variants: list[Variant]) -> PlanFlags:
        period = self.periods[index]
        tier_priced = any(is_tier_condition(v.when) for v in variants)
        batch_priced = any(is_batch_condition(v.when) for v in variants)
        flags = context.flags(tier_priced, batch_priced)
        if not variants:
            return period.plan, flags
        overrides: dict[str, Decimal | gp.TieredPrices] = {}
        for variant in variants:  # first to last, each price key independently (genai-prices get_prices)
            for key, value in variant.values.items():
                overrides.setdefault(key, value)
        entry = f"{period.plan.entry} [{context.label(tier_priced, batch_priced)}]"
        plan = plan_of({**period.values, **overrides}, version=self.version, entry=entry, minimum=self.minimum)
        return plan, flags


def catalog_model(provider: gp.Provider, info: gp.ModelInfo, *, version: str, own: bool) -> CatalogModel | None:
    """The price tables of `info` as matched through `provider`; `own`: the provider lists the model
    itself (not through a fallback provider), so its variants apply. None when it has no price."""
    entry = f"{provider.id}/{info.id}"
    minimum = MINIMUMS.get((provider.id, info.id))
    conditionals = ([gp.ConditionalPrice(None, prices=info.prices)] if isinstance(info.prices, gp.ModelPrice)
                    else info.prices)
    periods = []
    for conditional in conditionals:
        window = Window.of(conditional.constraint)
        values = price_values(conditional.prices)
        periods.append(Period(window, values, plan_of(values, version=version, entry=entry + window.suffix,
                                                      minimum=minimum)))
    if not periods:
        return None
    variants = tuple(Variant(dict(v.when), Window.of(v.constraint), price_values(v.prices))
                     for v in (info.price_variants or ()) if own)
    return CatalogModel(provider.id, info.id, tuple(periods), variants, version, minimum)
