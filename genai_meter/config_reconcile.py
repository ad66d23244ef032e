"""The `reconcile` section of the configuration: comparing the ledger with the providers' own reports
(docs/reconciliation.md). Part of `genai_meter.config`, which re-exports it."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator, model_validator

from genai_meter.config_base import Section

# The fields a CSV mapping can fill (docs/reconciliation.md): ProviderLine's fields, by name.
MappedColumn = Literal["day", "provider", "model", "project", "api_key_id", "service_tier", "batch", "requests",
                       "input", "cache_read", "cache_write", "cache_write_1h", "output", "reasoning", "cost",
                       "currency", "line_item"]
_UNIT_KEY = re.compile(r"^(custom\.)?[a-z][a-z0-9_]*$")


class CsvMappingConfig(Section):
    """How the columns of one kind of CSV export become provider lines (`reconcile parse`, imports)."""

    columns: dict[MappedColumn, str]  # field -> column header; `day` and `model` are required
    units: dict[str, str] = {}  # LLMCall.units key (genai-prices usage key or custom.NAME) -> column header
    provider: str | None = None  # the provider of every row, when no `provider` column is mapped
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")  # of every cost, when no `currency` column
    cost_scale: Decimal = Field(default=Decimal(1), gt=0)  # the cost column times this is the amount (0.01: cents)
    input_includes_cache: bool = False  # the input column also counts the cache_read and cache_write tokens
    output_includes_reasoning: bool = False  # the output column also counts the reasoning tokens
    day_format: str | None = None  # strptime format of the day column; default ISO 8601 date or date-time (UTC)
    delimiter: str = Field(default=",", min_length=1, max_length=1)

    @model_validator(mode="after")
    def _complete(self) -> CsvMappingConfig:
        missing = [name for name in ("day", "model") if name not in self.columns]
        if missing:
            raise ValueError(f"columns: map {' and '.join(missing)}")
        if (self.provider is None) == ("provider" not in self.columns):
            raise ValueError("set exactly one of provider (every row) or columns.provider")
        if "cost" in self.columns and self.currency is None and "currency" not in self.columns:
            raise ValueError("a mapped cost needs currency (every row) or columns.currency")
        for key in self.units:
            if not _UNIT_KEY.match(key):
                raise ValueError(f"units: {key!r} is not a usage key (input_audio_tokens, web_searches, custom.NAME)")
        return self


class ReconcileProviderConfig(Section):
    """Where `reconcile pull` reaches one provider's admin API."""

    base_url: str | None = None  # default: the provider's public API (tests: a loopback server)
    key_env: str | None = None  # environment variable holding the admin key; default per provider


class ReconcilePullConfig(Section):
    """What a `reconcile_pull` schedule fetches (reports.schedules[].pull): the whole UTC days before its slot."""

    provider: Literal["openai", "anthropic", "openrouter"]
    days: int = Field(default=3, ge=1, le=31)  # the days before the slot's UTC day, fetched again every run


# Ledger-side attribution matched against a provider's own groups: project (OpenAI project, Anthropic workspace)
# and API key. The value names the ledger dimension whose values are the provider's ids.
MatchedGroup = Literal["project", "api_key_id"]


class ReconcileConfig(Section):
    """Comparing the ledger with the providers' own usage and cost reports (docs/reconciliation.md)."""

    providers: dict[str, ReconcileProviderConfig] = {}  # openai, anthropic, openrouter
    mappings: dict[str, CsvMappingConfig] = {}  # name -> a CSV export's column mapping
    timeout_seconds: float = Field(default=30.0, gt=0)  # one HTTP request
    deadline_seconds: float = Field(default=600.0, gt=0)  # one whole pull, retries and waits included
    max_retries: int = Field(default=5, ge=0, le=20)  # per request, on 429, 5xx, timeouts and dropped connections
    # Comparing (docs/reconciliation.md, "Causes"):
    match_dimensions: dict[MatchedGroup, str] = {}  # also compare per project / API key: the ledger dimension
    tolerance_usd: Decimal = Field(default=Decimal("0.000001"), ge=0)  # a smaller difference is `exact` (rounding)
    # The alert (genai_meter_reconciliation_difference_usd): the drift over the last `alert_days` whole UTC days
    # passes `alert_share` of the provider's cost and at least `alert_min_usd`.
    alert_share: Decimal = Field(default=Decimal("0.05"), gt=0, le=1)
    alert_min_usd: Decimal = Field(default=Decimal("1"), ge=0)
    alert_days: int = Field(default=7, ge=1, le=90)

    @field_validator("mappings")
    @classmethod
    def _mapping_names(cls, value: dict[str, CsvMappingConfig]) -> dict[str, CsvMappingConfig]:
        for name in value:
            if not re.match(r"^[A-Za-z0-9_.-]+$", name):
                raise ValueError(f"mapping name {name!r}: use letters, digits, '_', '.', '-'")
        return value
