"""The priced-model list as recording rules: one zero-valued series per model the config's price
overrides or the price catalog list, so a model without requests can show as zero on a dashboard.

PromQL only shows series that exist; a model nobody called has none. These rules give every priced
model of the catalog's providers (under the provider ids spans use, OTel semconv) and every model
named in the overrides a series `provider_model:<prefix>_priced_models:catalog{provider, model} 0`.
The list follows the installed genai-prices data: regenerate deploy/ after upgrading it.
"""

from __future__ import annotations

from typing import Any

from genai_meter.config import Config
from genai_meter.pricing.catalog import PROVIDER_MAP, Catalog
from genai_meter.pricing.overrides import load_overrides
from genai_meter.promql.names import RuleNames
from genai_meter.promql.text import quote

GROUP_PRICED_MODELS = "genai-meter.priced-models"


def semconv_providers() -> dict[str, str]:
    """Catalog provider id -> the provider id spans carry (the first OTel semconv spelling)."""
    out: dict[str, str] = {}
    for semconv, catalog_id in PROVIDER_MAP.items():
        out.setdefault(catalog_id, semconv)
    return out


def priced_models(config: Config) -> dict[str, list[str]]:
    """Provider (span spelling) -> sorted model ids from the pinned catalog and the price overrides."""
    snapshot = Catalog(pinned=True).snapshot
    by_id = {p.id: p for p in snapshot.providers}
    models: dict[str, set[str]] = {}
    for catalog_id, provider in semconv_providers().items():
        found = by_id.get(catalog_id)
        if found is not None:
            models.setdefault(provider, set()).update(m.id for m in found.models)
    if config.pricing.overrides is not None:
        entries, _ = load_overrides(config.resolve_path(config.pricing.overrides), config.pricing.currency)
        for entry in entries:
            if entry.model:
                models.setdefault(entry.provider, set()).add(entry.model)
    return {provider: sorted(names) for provider, names in sorted(models.items()) if names}


def _zeros(models: list[str]) -> str:
    return "\nor ".join(f'label_replace(vector(0), "model", {quote(m)}, "", "")' for m in models)


def build_priced_models_group(config: Config, r: RuleNames) -> dict[str, Any]:
    """One rule per provider; each yields a 0 series per priced model of that provider."""
    rules = [{"record": r.priced_models, "expr": _zeros(models), "labels": {"provider": provider}}
             for provider, models in priced_models(config).items()]
    return {"name": GROUP_PRICED_MODELS, "rules": rules}
