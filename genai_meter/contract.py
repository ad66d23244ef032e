"""The metric contract: names, label sets, token and cost classes, histogram buckets.

Exporters, dashboards, rules and reports all read this module (and none reads another's code), so a
renamed prefix or an added dimension stays consistent everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from genai_prices.data_units import unit_data

from genai_meter.config import Config

# The five disjoint token classes; cost is a plain sum over them (docs/accuracy.md).
TOKEN_TYPES: tuple[str, ...] = ("input", "cache_read", "cache_write", "output", "reasoning")
# Cost classes: the token classes plus per-request fees.
COST_TYPES: tuple[str, ...] = TOKEN_TYPES + ("request",)
INPUT_SIDE: tuple[str, ...] = ("input", "cache_read", "cache_write")
OUTPUT_SIDE: tuple[str, ...] = ("output", "reasoning")

# Billed units beyond the five classes (`LLMCall.units`, docs/pricing.md): genai-prices' usage keys (its unit
# registry, but `requests`, which is the `request` cost class) and `custom.<name>` units of the override file.
# The dimensions of each registry unit (family tokens / tool_calls / durations ..., direction, modality ...).
UNIT_DIMENSIONS: dict[str, dict[str, str]] = {
    key: dict(unit["dimensions"]) for key, unit in unit_data.items() if key != "requests"}
REGISTRY_UNITS: frozenset[str] = frozenset(UNIT_DIMENSIONS)
# Registry units counted as tokens (llm_tokens_total); every other unit is a quantity (llm_units_total).
TOKEN_UNITS: frozenset[str] = frozenset(k for k, d in UNIT_DIMENSIONS.items() if d.get("family") == "tokens")
# The registry keys the five classes stand for: never a unit of their own.
CLASS_UNIT_KEYS: frozenset[str] = frozenset({"input_tokens", "cache_read_tokens", "cache_write_tokens",
                                             "cache_write_5m_tokens", "output_tokens", "output_reasoning_tokens"})
CUSTOM_UNIT_PREFIX = "custom."
MAX_UNIT_NAME_LENGTH = 64  # a custom unit's name after `custom.`
MAX_UNITS_PER_CALL = 32  # more distinct units on one call: the call is invalid (INVALID_UNIT_COUNT)
# Every registry token unit is named input_* / cache_* (input side) or output_* (output side): the token_type
# matchers of the input and output sides (promql.names), classes and units alike.
INPUT_SIDE_UNIT_PREFIXES: tuple[str, ...] = ("input_", "cache_")
OUTPUT_SIDE_UNIT_PREFIXES: tuple[str, ...] = ("output_",)
assert all(k.startswith(INPUT_SIDE_UNIT_PREFIXES if d["direction"] == "input" else OUTPUT_SIDE_UNIT_PREFIXES)
           for k, d in UNIT_DIMENSIONS.items() if k in TOKEN_UNITS)

# The service tier label (`service_tier`): the normalised tiers, `batch` for a batch call at the standard tier,
# `default` when the span says nothing, `unknown` for any other value a span gives (bounded).
SERVICE_TIERS: tuple[str, ...] = ("default", "flex", "priority", "scale", "fast", "batch", "unknown")
TIER_DEFAULT = "default"
TIER_UNKNOWN = "unknown"
TIER_BATCH = "batch"

STATUS_OK = "ok"
STATUS_ERROR = "error"
OVERFLOW = "__overflow__"  # the label value that folded label sets share
UNKNOWN = "unknown"  # a base label whose attribute was absent

# GenAI semconv duration buckets, extended to a few minutes for reasoning models.
DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    163.84, 327.68,
)
# GenAI semconv time-to-first-token buckets.
TTFT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)

# Reasons a span is skipped (genai_meter_spans_skipped_total{reason}).
SKIP_NOT_LLM = "not_llm"
SKIP_AGGREGATE = "aggregate"  # an agent/workflow/wrapper span repeating its children's usage
SKIP_NON_INFERENCE = "non_inference"  # tool, retrieval and other GenAI spans without a model call
INVALID_TOKEN_COUNT = "token_count_out_of_range"  # LLMCall.invalid, and the rejected{reason} of such calls
# LLMCall.invalid (and rejected{reason}): a unit quantity < 0, > limits.max_tokens_per_call or not a number, or
# more than MAX_UNITS_PER_CALL distinct units
INVALID_UNIT_COUNT = "unit_count_out_of_range"
# LLMCall.invalid (and rejected{reason}) of a call whose price gives a class or a total of 2^63 * 10^-12 USD
# or more (about 9.2M USD for one call; pricing.rates.pico_in_range): the ledger's Int64 cannot hold it
INVALID_COST = "cost_out_of_range"
# rejected{reason} of a call the ledger can never store (a value beyond its columns; docs/ledger.md): the
# spans of its request are answered rejected (OTLP partial success), never 503
REJECT_LEDGER_ROW = "ledger_row_rejected"
SKIP_NESTED = "nested_llm"  # an LLM span whose child LLM span already counted the same call
# Reasons an LLM call is unmetered (llm_unmetered_requests_total{reason}).
UNMETERED_NO_USAGE = "no_usage"
UNMETERED_CACHE_UNKNOWN = "cache_unknown"
# Why a priced call is only partly priced (llm_partially_priced_requests_total{reason}; Cost.unpriced_units):
PARTIAL_TIER = "service_tier"  # its service tier has no price of its own: charged at the standard price
PARTIAL_BATCH = "batch"  # no batch price: charged at the standard price
PARTIAL_UNIT = "unit"  # a billed unit without a price: left out of its cost
PARTIAL_REASONS: tuple[str, ...] = (PARTIAL_TIER, PARTIAL_BATCH, PARTIAL_UNIT)
# Why a call's cost is an estimate (llm_estimated_requests_total{reason}; LLMCall.estimate states the assumption):
ESTIMATE_MODALITY = "modality_unknown"  # the model bills audio/image/video tokens apart; the span reports totals only


@dataclass(frozen=True)
class MetricNames:
    """Prometheus names of the usage metrics, derived from the configured prefix."""

    prefix: str

    @property
    def requests(self) -> str:
        return f"{self.prefix}_requests_total"

    @property
    def request_errors(self) -> str:
        """Failed requests by error type (no dimensions: error types times dimensions would explode)."""
        return f"{self.prefix}_request_errors_total"

    @property
    def tokens(self) -> str:
        return f"{self.prefix}_tokens_total"

    @property
    def cost(self) -> str:
        return f"{self.prefix}_cost_usd_total"

    @property
    def budget_spend(self) -> str:
        return f"{self.prefix}_budget_spend_usd_total"

    @property
    def budget_tokens(self) -> str:
        return f"{self.prefix}_budget_tokens_total"

    @property
    def budget_limit(self) -> str:
        """Gauge of each budget's limit (unit label: usd or tokens), so rules need no literals."""
        return f"{self.prefix}_budget_limit"

    @property
    def duration(self) -> str:
        return f"{self.prefix}_request_duration_seconds"

    @property
    def ttft(self) -> str:
        return f"{self.prefix}_time_to_first_token_seconds"

    @property
    def unpriced(self) -> str:
        return f"{self.prefix}_unpriced_requests_total"

    @property
    def unmetered(self) -> str:
        return f"{self.prefix}_unmetered_requests_total"

    @property
    def units(self) -> str:
        """Billed quantities that are not tokens (web searches, seconds, images, custom units), by unit."""
        return f"{self.prefix}_units_total"

    @property
    def partially_priced(self) -> str:
        """Priced calls whose cost leaves something out or stands in for it (Cost.unpriced_units), by reason."""
        return f"{self.prefix}_partially_priced_requests_total"

    @property
    def estimated(self) -> str:
        """Calls whose cost rests on an assumption (LLMCall.estimate), by reason."""
        return f"{self.prefix}_estimated_requests_total"

    @property
    def tool_calls(self) -> str:
        """Tool executions (spans of `execute_tool` and the like; they carry no tokens, no cost)."""
        return f"{self.prefix}_tool_calls_total"

    @property
    def price(self) -> str:
        return f"{self.prefix}_price_usd_per_million_tokens"


# Self-observability metrics (fixed names, independent of the prefix).
SELF_SPANS_RECEIVED = "genai_meter_spans_received_total"
SELF_SPANS_COUNTED = "genai_meter_spans_counted_total"
SELF_SPANS_SKIPPED = "genai_meter_spans_skipped_total"  # {reason}
SELF_SPANS_DUPLICATE = "genai_meter_spans_duplicate_total"
SELF_SPANS_REJECTED = "genai_meter_spans_rejected_total"  # {reason}
SELF_SPANS_SAMPLED = "genai_meter_spans_sampled_total"
SELF_LABEL_OVERFLOW = "genai_meter_label_overflow_total"  # {dimension}
SELF_SERIES_OVERFLOW = "genai_meter_series_overflow_total"  # {metric}
SELF_SPANS_FORWARDED = "genai_meter_spans_forwarded_total"
SELF_SPANS_FORWARD_DROPPED = "genai_meter_spans_forward_dropped_total"  # {reason}
SELF_PROCESSING_ERRORS = "genai_meter_processing_errors_total"
SELF_LEDGER_FAILURES = "genai_meter_ledger_write_failures_total"  # requests answered 503: the ledger refused
SELF_LEDGER_DIFFERENCE = "genai_meter_ledger_difference_usd"  # gauge: ledger minus metrics cost since start
SELF_LEDGER_WAL_BYTES = "genai_meter_ledger_wal_bytes"  # gauge: size of the SQLite write-ahead log
# The report service's reconciliation (GET /api/v1/reconciliation/metrics), gauges by provider over the last
# reconcile.alert_days whole UTC days that a stored provider report covers (docs/reconciliation.md)
SELF_RECONCILIATION_DIFFERENCE = "genai_meter_reconciliation_difference_usd"  # {provider}: provider minus ledger
SELF_RECONCILIATION_PROVIDER_COST = "genai_meter_reconciliation_provider_cost_usd"  # {provider}
SELF_RECONCILIATION_LEDGER_COST = "genai_meter_reconciliation_ledger_cost_usd"  # {provider}
SELF_RECONCILIATION_ROWS = "genai_meter_reconciliation_rows"  # {provider, cause}
SELF_RECONCILIATION_DAYS = "genai_meter_reconciliation_days"  # {provider}: days a provider report covers
SELF_WORKERS_UNRESPONSIVE = "genai_meter_workers_unresponsive"  # gauge: workers whose last figures are shown
SELF_BUILD_INFO = "genai_meter_build_info"  # {version}
SELF_PRICING_INFO = "genai_meter_pricing_info"  # {catalog_version, overrides_version, catalog_date}
# Unix time of the UTC day the price catalog in use dates from (its age: time() - this; the stale-catalog alert)
SELF_PRICING_CATALOG_TIME = "genai_meter_pricing_catalog_timestamp_seconds"
# The report service's own (its /api/v1/metrics, scraped as job genai-meter-reports).
SELF_REPORT_SCHEDULE_RUNS = "genai_meter_report_schedule_runs_total"  # {schedule, result: delivered | failed}


@dataclass(frozen=True)
class Contract:
    """Names and label sets for one config. Build it with `Contract.from_config`."""

    names: MetricNames
    dimensions: tuple[str, ...]  # active dimension labels, sorted

    @classmethod
    def from_config(cls, config: Config) -> Contract:
        return cls(MetricNames(config.metric_prefix), tuple(config.active_dimensions))

    @cached_property
    def call_labels(self) -> tuple[str, ...]:
        """Labels every usage series carries, before the class label (the first five: `base_labels`)."""
        return ("service_name", "environment", "provider", "model", "operation", "service_tier") + self.dimensions

    base_labels: tuple[str, ...] = ("service_name", "environment", "provider", "model", "operation")

    @cached_property
    def request_labels(self) -> tuple[str, ...]:
        return self.call_labels + ("status",)

    @cached_property
    def token_labels(self) -> tuple[str, ...]:
        return self.call_labels + ("token_type",)

    @cached_property
    def cost_labels(self) -> tuple[str, ...]:
        return self.call_labels + ("cost_type",)

    @cached_property
    def unit_labels(self) -> tuple[str, ...]:
        return self.call_labels + ("unit",)

    duration_labels: tuple[str, ...] = ("service_name", "environment", "provider", "model", "operation", "status")
    error_labels: tuple[str, ...] = ("service_name", "environment", "provider", "model", "operation", "error_type")
    ttft_labels: tuple[str, ...] = ("service_name", "environment", "provider", "model", "operation")
    unpriced_labels: tuple[str, ...] = ("service_name", "provider", "model")
    unmetered_labels: tuple[str, ...] = ("service_name", "provider", "model", "reason")
    partially_priced_labels: tuple[str, ...] = ("service_name", "provider", "model", "reason")
    estimated_labels: tuple[str, ...] = ("service_name", "provider", "model", "reason")
    budget_labels: tuple[str, ...] = ("budget", "period")
    price_labels: tuple[str, ...] = ("provider", "model", "token_type")
    tool_labels: tuple[str, ...] = ("service_name", "environment", "tool_name", "status")
