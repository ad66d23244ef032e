"""The default price catalog: the `genai-prices` package, used offline.

Maps genai-meter's provider ids (OTel GenAI semconv `gen_ai.provider.name` values) to genai-prices
provider ids, matches model refs with genai-prices' own match logic (including its fallback
providers, e.g. Azure -> OpenAI, Google Vertex -> Anthropic), and turns a matched model's prices
into `Plan`s, one per price period (genai-prices `ConditionalPrice`: start dates, time-of-day windows).

Price periods are selected with integer comparisons on the call's end time (Unix ns), following
genai-prices exactly: the last period whose constraint is active wins; when none is, the first
period applies. Request-context price variants (service tier, batch) are not applied: spans do not
carry that context yet, so the standard price is used, as genai-prices does without a context.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

import genai_prices
from genai_prices import types as gp
from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id, get_snapshot

from genai_meter.pricing.rates import Plan, Steps, build_plan

SOURCE = "genai-prices"

# genai-meter provider id (OTel semconv, plus older semconv spellings) -> genai-prices provider id.
# Ids not listed here are looked up with genai-prices' own provider matching (its ids and aliases).
PROVIDER_MAP: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",  # semconv before 1.37
    "az.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",  # semconv before 1.37
    "gemini": "google",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral_ai": "mistral",
    "perplexity": "perplexity",
    "x_ai": "x-ai",
    "xai": "x-ai",
}
# Provider values that mean "not reported": the provider is then inferred from the model ref, as
# genai-prices does when no provider is given (e.g. gpt-4o -> openai, claude-* -> anthropic).
UNKNOWN_PROVIDERS = frozenset({"", "unknown", "_other"})

# genai-prices price key -> our raw key (rates.RAW_KEYS); requests_kcount is converted to per request.
_PRICE_KEYS: dict[str, str] = {
    "input_mtok": "input",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "cache_write_5m_mtok": "cache_write_5m",
    "cache_write_1h_mtok": "cache_write_1h",
    "output_mtok": "output",
    "output_reasoning_mtok": "reasoning",
}
_THOUSAND = Decimal(1000)
_DAY_US = 86_400_000_000
_ALWAYS, _FROM, _TIME_OF_DAY = 0, 1, 2


def _utc_midnight_ns(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000_000


def _utc_micros_of_day(value: time) -> int:
    if value.tzinfo is not None:
        value = datetime.combine(date(1970, 1, 1), value).astimezone(UTC).time()
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


@dataclass(frozen=True, slots=True)
class Period:
    """One genai-prices price period, with its constraint as integer bounds on the end time."""

    kind: int  # _ALWAYS, _FROM (a <= end_ns) or _TIME_OF_DAY (a <= micros of day < b, wrapping)
    a: int
    b: int
    plan: Plan

    def active(self, end_ns: int) -> bool:
        if self.kind == _ALWAYS:
            return True
        if self.kind == _FROM:
            return end_ns >= self.a
        micros = (end_ns // 1000) % _DAY_US
        if self.b < self.a:
            return micros >= self.a or micros < self.b
        return self.a <= micros < self.b


@dataclass(frozen=True, slots=True)
class CatalogModel:
    """A catalog model matched for one (provider, model ref), with its price periods."""

    provider_id: str  # genai-prices provider id
    model_id: str  # genai-prices model id
    periods: tuple[Period, ...]  # in catalog order

    def index_at(self, end_ns: int) -> int:
        """The index of the period in force at `end_ns` (genai-prices: the last active, else the first)."""
        periods = self.periods
        for index in range(len(periods) - 1, -1, -1):
            if periods[index].active(end_ns):
                return index
        return 0

    def plan_at(self, end_ns: int) -> Plan:
        """The plan in force at `end_ns`."""
        return self.periods[self.index_at(end_ns)].plan

    @property
    def fixed(self) -> Plan | None:
        """The one plan when prices never change with time, else None."""
        if len(self.periods) == 1:
            return self.periods[0].plan
        return None


def _steps(value: Decimal | gp.TieredPrices, scale: Decimal | None = None) -> Steps:
    if isinstance(value, gp.TieredPrices):
        base, tiers = value.base, tuple((tier.start, tier.price) for tier in value.tiers)
    else:
        base, tiers = value, ()
    if scale is not None:
        base, tiers = base / scale, tuple((start, price / scale) for start, price in tiers)
    return base, tiers


def _raw_prices(model_price: gp.ModelPrice) -> dict[str, Steps]:
    raw: dict[str, Steps] = {}
    values = model_price.__dict__
    for price_key, raw_key in _PRICE_KEYS.items():
        value = values.get(price_key)
        if value is not None:
            raw[raw_key] = _steps(value)
    requests = values.get("requests_kcount")
    if requests is not None:
        raw["per_request"] = _steps(requests, _THOUSAND)
    return raw


def _period(constraint: object, model_price: gp.ModelPrice, *, version: str, entry: str) -> Period:
    if isinstance(constraint, gp.StartDateConstraint):
        kind, a, b = _FROM, _utc_midnight_ns(constraint.start_date), 0
        entry = f"{entry}@{constraint.start_date.isoformat()}"
    elif isinstance(constraint, gp.TimeOfDateConstraint):
        kind, a, b = _TIME_OF_DAY, _utc_micros_of_day(constraint.start_time), _utc_micros_of_day(constraint.end_time)
        entry = f"{entry}@{_hhmm(constraint.start_time)}-{_hhmm(constraint.end_time)}UTC"
    elif constraint is None:
        kind, a, b = _ALWAYS, 0, 0
    else:  # a constraint type this version does not know: never active (the first period then applies)
        kind, a, b = _FROM, 1 << 126, 0
    plan = build_plan(_raw_prices(model_price), source=SOURCE, version=version, entry=entry)
    return Period(kind, a, b, plan)


def _hhmm(value: time) -> str:
    micros = _utc_micros_of_day(value) // 1_000_000
    return f"{micros // 3600:02d}:{micros // 60 % 60:02d}"


class Catalog:
    """genai-prices data, looked up by genai-meter provider id and model ref.

    `pinned=True` (the default) uses the data bundled in the installed package and nothing else;
    `pinned=False` follows genai-prices' current snapshot, which its auto-update replaces at run time.
    Lookups are not cached here (`PriceBook` caches); `find` may take ~0.1 ms.
    """

    def __init__(self, *, pinned: bool = True) -> None:
        self._pinned: DataSnapshot | None = None
        if pinned:
            from genai_prices.data import providers

            self._pinned = DataSnapshot(providers=providers, from_auto_update=False)

    @property
    def snapshot(self) -> DataSnapshot:
        """The genai-prices data in use now."""
        return self._pinned if self._pinned is not None else get_snapshot()

    @staticmethod
    def version_of(snapshot: DataSnapshot) -> str:
        """The catalog version label: the package version, plus the fetch time of auto-updated data."""
        if snapshot.from_auto_update:
            return f"{genai_prices.__version__}+update.{snapshot.timestamp.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        return genai_prices.__version__

    @property
    def version(self) -> str:
        return self.version_of(self.snapshot)

    def find_provider(self, provider: str, model: str, snapshot: DataSnapshot | None = None) -> gp.Provider | None:
        """The genai-prices provider for a genai-meter provider id (inferred from `model` when unknown)."""
        snapshot = snapshot or self.snapshot
        key = provider.strip().lower()
        if key in UNKNOWN_PROVIDERS:
            ref = model.lower()
            return next((p for p in snapshot.providers if p.model_match is not None and p.model_match.is_match(ref)),
                        None)
        return find_provider_by_id(snapshot.providers, PROVIDER_MAP.get(key, key))

    def find(self, provider: str, model: str) -> CatalogModel | None:
        """The catalog model for (provider, model ref), or None when no price matches."""
        snapshot = self.snapshot
        if not model:
            return None
        found = self.find_provider(provider, model, snapshot)
        if found is None:
            return None
        info = found.find_model(model, all_providers=snapshot.providers)
        if info is None:
            return None
        version = self.version_of(snapshot)
        entry = f"{found.id}/{info.id}"
        periods: tuple[Period, ...]
        if isinstance(info.prices, gp.ModelPrice):
            periods = (_period(None, info.prices, version=version, entry=entry),)
        else:
            periods = tuple(_period(conditional.constraint, conditional.prices, version=version, entry=entry)
                            for conditional in info.prices)
        if not periods:
            return None
        return CatalogModel(found.id, info.id, periods)


def to_genai_usage(input: int = 0, cache_read: int = 0, cache_write: int = 0, output: int = 0, reasoning: int = 0,
                   *, cache_write_1h: bool = False) -> genai_prices.Usage:
    """Our five disjoint classes as a genai-prices `Usage`, whose counts nest instead.

    genai-prices counts `input_tokens` including cache reads and writes, `cache_write_tokens`
    including its 5m/1h parts, and `output_tokens` including `output_reasoning_tokens`; it prices the
    leaves (each count minus its priced descendants). So: input_tokens = input + cache_read +
    cache_write, output_tokens = output + reasoning, and the cache writes also go to the 5m or 1h key.
    """
    return genai_prices.Usage(
        input_tokens=input + cache_read + cache_write,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=cache_write if cache_write_1h else 0,
        cache_write_5m_tokens=0 if cache_write_1h else cache_write,
        output_tokens=output + reasoning,
        output_reasoning_tokens=reasoning,
    )
