"""The default price catalog: the `genai-prices` package data (used offline), or a newer genai-prices data
snapshot stored with `genai-meter prices update` (pricing.snapshots).

Maps genai-meter's provider ids (OTel GenAI semconv `gen_ai.provider.name` values) to genai-prices
provider ids, matches model refs with genai-prices' own match logic (including its fallback
providers, e.g. Azure -> OpenAI, Google Vertex -> Anthropic), and turns a matched model's prices
into price tables (catalog_prices.CatalogModel: periods, price variants, plans).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import genai_prices
from genai_prices import types as gp
from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id, get_snapshot

from genai_meter.pricing.catalog_prices import CatalogModel, catalog_model

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

# The day the data of each pinned genai-prices version dates from (the catalog's age starts there): the
# day genai-meter pinned it, which is also the newest effective date in its data. Kept with the pin in
# pyproject.toml (tests/pricing check that the installed version is listed).
PINNED_DATA_DATES: dict[str, date] = {"0.2.3": date(2026, 12, 1)}


@dataclass(frozen=True, slots=True)
class CatalogSource:
    """Fixed catalog data: the genai-prices providers, their version label and the day they date from."""

    snapshot: DataSnapshot
    version: str  # catalog_version: "0.2.3", or a stored snapshot's label
    date: date
    origin: str = "package"  # "package" (the pinned genai-prices data) or "stored" (pricing.snapshots)


def newest_effective_date(providers: list[gp.Provider], today: date) -> date | None:
    """The newest start date in `providers` (prices and variants) that is not after `today`."""
    days = [c.start_date for p in providers for m in p.models
            for c in [*(x.constraint for x in (m.prices if isinstance(m.prices, list) else ())),
                      *(v.constraint for v in (m.price_variants or ()))]
            if isinstance(c, gp.StartDateConstraint) and c.start_date <= today]
    return max(days, default=None)


def package_source() -> CatalogSource:
    """The data bundled in the installed genai-prices package."""
    from genai_prices.data import providers  # the 1.6 MB data module, loaded when first needed

    version = genai_prices.__version__
    day = PINNED_DATA_DATES.get(version) or newest_effective_date(providers, datetime.now(UTC).date())
    return CatalogSource(DataSnapshot(providers=providers, from_auto_update=False), version,
                         day or date(1970, 1, 1), "package")


class Catalog:
    """genai-prices data, looked up by genai-meter provider id and model ref.

    `source` fixes the data: a stored snapshot (pricing.snapshots), else with `pinned=True` (the
    default) the data bundled in the installed package and nothing else; `pinned=False` follows
    genai-prices' current snapshot, which its auto-update replaces at run time. Lookups are not
    cached here (`PriceBook` caches); `find` may take ~0.1 ms.
    """

    def __init__(self, *, pinned: bool = True, source: CatalogSource | None = None) -> None:
        self.source = source if source is not None else (package_source() if pinned else None)

    @property
    def snapshot(self) -> DataSnapshot:
        """The genai-prices data in use now."""
        return self.source.snapshot if self.source is not None else get_snapshot()

    def version_of(self, snapshot: DataSnapshot) -> str:
        """The catalog version label: the package version (plus the fetch time of auto-updated data), or
        the stored snapshot's label."""
        if self.source is not None and snapshot is self.source.snapshot:
            return self.source.version
        if snapshot.from_auto_update:
            return f"{genai_prices.__version__}+update.{snapshot.timestamp.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        return genai_prices.__version__

    @property
    def version(self) -> str:
        return self.version_of(self.snapshot)

    @property
    def origin(self) -> str:
        """"package", "stored" or "auto-update" (genai-prices' fetched data, or its bundled data until then)."""
        return self.source.origin if self.source is not None else "auto-update"

    @property
    def data_date(self) -> date:
        """The day the prices in use date from: the package data's day, a stored snapshot's storing day,
        or the fetch day of auto-updated data."""
        if self.source is not None:
            return self.source.date
        snapshot = get_snapshot()
        if snapshot.from_auto_update:
            return snapshot.timestamp.astimezone(UTC).date()
        return package_source().date

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
        own = any(info is listed for listed in found.models)  # else through a fallback provider: no variants
        return catalog_model(found, info, version=self.version_of(snapshot), own=own)
