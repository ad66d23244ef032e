"""Names of the recording rules and the token-side matchers, shared by rules and dashboards.

Recording rules follow `level:metric:operation` (monitoring-mixins naming): `level` names the labels
the result keeps, `metric` is the source metric without `_total`, `operation` what was done to it.

Levels:
  service_model                      service_name, environment, provider, model
  service_model_operation            the above plus operation (histograms)
  service_model_operation_<dims...>  the above plus every active dimension (the dashboards' filters)
  service                            service_name, environment
  customer, model                    the anomaly baselines: customer; provider and model
  provider_model                     provider, model (the priced-model list)
  budget                             budget (and period, where the source has one)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from genai_meter import contract as c
from genai_meter.contract import Contract, MetricNames

SERVICE_MODEL: tuple[str, ...] = ("service_name", "environment", "provider", "model")
SERVICE_MODEL_OPERATION: tuple[str, ...] = SERVICE_MODEL + ("operation",)
SERVICE: tuple[str, ...] = ("service_name", "environment")
PROVIDER_MODEL: tuple[str, ...] = ("provider", "model")
SCRAPE_JOB = "genai-meter"  # job name of the processor in the generated Prometheus config
REPORTS_SCRAPE_JOB = "genai-meter-reports"  # job name of the report service (its /api/v1/metrics)
REPORTS_METRICS_PATH = "/api/v1/metrics"
# The reconciliation gauges (admin only; they change once a day): scraped every 5 minutes
RECONCILIATION_SCRAPE_JOB = "genai-meter-reconciliation"
RECONCILIATION_METRICS_PATH = "/api/v1/reconciliation/metrics"

# The one spelling of "input tokens" and "output tokens" as users read them (contract classes).
INPUT_TOKEN_TYPES = "|".join(c.INPUT_SIDE)
OUTPUT_TOKEN_TYPES = "|".join(c.OUTPUT_SIDE)
INPUT_SIDE = f'token_type=~"{INPUT_TOKEN_TYPES}"'
OUTPUT_SIDE = f'token_type=~"{OUTPUT_TOKEN_TYPES}"'
OK = f'status="{c.STATUS_OK}"'
FAILED = f'status="{c.STATUS_ERROR}"'

# Anomaly scopes: the label sets whose hourly usage is compared with the same hour of past days.
ANOMALY_SCOPES: dict[str, tuple[str, ...]] = {"customer": ("customer",), "model": PROVIDER_MODEL}
ANOMALY_METRICS: tuple[str, ...] = ("requests", "tokens", "cost_usd")


@dataclass(frozen=True)
class Baseline:
    """The three rules of one seasonal baseline: last hour, same-hour mean and deviation."""

    increase1h: str
    avg: str
    stddev: str


@dataclass(frozen=True)
class RuleNames:
    """Every recording rule name for one contract. Build it with `RuleNames.of(contract)`."""

    contract: Contract

    @classmethod
    def of(cls, contract: Contract) -> RuleNames:
        return cls(contract)

    @property
    def names(self) -> MetricNames:
        return self.contract.names

    @property
    def p(self) -> str:
        return self.contract.names.prefix

    # -- label sets -------------------------------------------------------------------------
    @cached_property
    def attribution_labels(self) -> tuple[str, ...]:
        """The labels of the 15-minute totals: service, environment, provider, model, operation, dims."""
        return SERVICE_MODEL_OPERATION + self.contract.dimensions

    @cached_property
    def attribution_level(self) -> str:
        return "_".join(("service_model_operation",) + self.contract.dimensions)

    # -- 5-minute rates (evaluated every global evaluation_interval): alerts, live panels ----
    @property
    def requests_rate5m(self) -> str:
        return f"service_model:{self.p}_requests:rate5m"

    @property
    def tokens_rate5m(self) -> str:
        return f"service_model:{self.p}_tokens:rate5m"

    @property
    def cost_rate5m(self) -> str:
        return f"service_model:{self.p}_cost_usd:rate5m"

    @property
    def duration_bucket_rate5m(self) -> str:
        return f"service_model_operation:{self.p}_request_duration_seconds_bucket:rate5m"

    @property
    def duration_sum_rate5m(self) -> str:
        return f"service_model_operation:{self.p}_request_duration_seconds_sum:rate5m"

    @property
    def ttft_bucket_rate5m(self) -> str:
        return f"service_model_operation:{self.p}_time_to_first_token_seconds_bucket:rate5m"

    @property
    def errors_rate5m(self) -> str:
        return f"service_model:{self.p}_request_errors:rate5m"

    # -- 15-minute increments (group interval 15m): totals over any dashboard range ----------
    @property
    def requests_increase15m(self) -> str:
        return f"{self.attribution_level}:{self.p}_requests:increase15m"

    @property
    def tokens_increase15m(self) -> str:
        return f"{self.attribution_level}:{self.p}_tokens:increase15m"

    @property
    def cost_increase15m(self) -> str:
        return f"{self.attribution_level}:{self.p}_cost_usd:increase15m"

    @property
    def errors_increase15m(self) -> str:
        return f"service_model:{self.p}_request_errors:increase15m"

    @property
    def duration_bucket_increase15m(self) -> str:
        return f"service_model_operation:{self.p}_request_duration_seconds_bucket:increase15m"

    @property
    def duration_sum_increase15m(self) -> str:
        return f"service_model_operation:{self.p}_request_duration_seconds_sum:increase15m"

    @property
    def ttft_bucket_increase15m(self) -> str:
        return f"service_model_operation:{self.p}_time_to_first_token_seconds_bucket:increase15m"

    # -- seasonal baselines (spend spike per service; anomalies per customer and model) ------
    def baseline(self, level: str, metric: str) -> Baseline:
        """The baseline rules of `<prefix>_<metric>` at `level` (service, customer or model)."""
        base = f"{level}:{self.p}_{metric}:increase1h"
        return Baseline(base, f"{base}_same_hour_avg7d", f"{base}_same_hour_stddev7d")

    @property
    def service_cost_increase1h(self) -> str:
        return self.baseline("service", "cost_usd").increase1h

    @property
    def service_cost_baseline_avg(self) -> str:
        return self.baseline("service", "cost_usd").avg

    @property
    def service_cost_baseline_stddev(self) -> str:
        return self.baseline("service", "cost_usd").stddev

    # -- priced models (so a model without requests can show as zero) --------------------
    @property
    def priced_models(self) -> str:
        """One series (value 0) per priced model that the config or the catalog lists."""
        return f"provider_model:{self.p}_priced_models:catalog"

    # -- budgets ----------------------------------------------------------------------------
    @property
    def budget_spend(self) -> str:
        """Spend (USD) of each budget's current period so far, by (budget, period)."""
        return f"budget:{self.p}_budget_spend_usd:period_to_date"

    @property
    def budget_tokens(self) -> str:
        """Tokens of each budget's current period so far, by (budget, period)."""
        return f"budget:{self.p}_budget_tokens:period_to_date"

    @property
    def budget_ratio(self) -> str:
        """Share of the limit used so far (1 = the limit), by (budget, period)."""
        return f"budget:{self.p}_budget_usage:ratio"

    @property
    def budget_ratio_rate(self) -> str:
        """Share of the limit used per second at the current rate, by (budget)."""
        return f"budget:{self.p}_budget_usage:ratio_per_second"

    @property
    def budget_projected(self) -> str:
        """Share of the limit projected at period end: used + current rate x time left."""
        return f"budget:{self.p}_budget_usage:projected_ratio"

    @property
    def budget_seconds_left(self) -> str:
        """Seconds until the budget's current period ends, by (budget)."""
        return f"budget:{self.p}_budget_period:seconds_left"
