"""Names of the recording rules, shared by the rule generator and the dashboards.

Recording rules follow `level:metric:operation` (monitoring-mixins naming): `level` names the labels
the result keeps, `metric` is the source metric without `_total`, `operation` what was done to it.

Levels:
  service_model            service_name, environment, provider, model
  service_model_<dims...>  the above plus every active dimension (the dashboards' filter labels)
  service                  service_name, environment
  budget                   budget (and period, where the source has one)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from genai_meter.contract import Contract, MetricNames

SERVICE_MODEL: tuple[str, ...] = ("service_name", "environment", "provider", "model")
SERVICE: tuple[str, ...] = ("service_name", "environment")
INPUT_TOKEN_TYPES = "input|cache_read|cache_write"
OUTPUT_TOKEN_TYPES = "output|reasoning"
SCRAPE_JOB = "genai-meter"  # job name of the processor in the generated Prometheus config


def request_errors_metric(names: MetricNames) -> str:
    """Failed requests by error type: `<prefix>_request_errors_total{service_name, environment,
    provider, model, operation, error_type}` (no dimensions)."""
    return names.request_errors


def by(labels: tuple[str, ...] | list[str]) -> str:
    """`by (a, b)` for an aggregation."""
    return f"by ({', '.join(labels)})"


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
        """The labels every dashboard filters on: service, environment, provider, model, dims."""
        return SERVICE_MODEL + self.contract.dimensions

    @cached_property
    def attribution_level(self) -> str:
        return "_".join(("service_model",) + self.contract.dimensions)

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
        return f"service_model:{self.p}_request_duration_seconds_bucket:rate5m"

    @property
    def ttft_bucket_rate5m(self) -> str:
        return f"service_model:{self.p}_time_to_first_token_seconds_bucket:rate5m"

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
        return f"service_model:{self.p}_request_duration_seconds_bucket:increase15m"

    @property
    def ttft_bucket_increase15m(self) -> str:
        return f"service_model:{self.p}_time_to_first_token_seconds_bucket:increase15m"

    # -- spend spike baseline -------------------------------------------------------------
    @property
    def service_cost_increase1h(self) -> str:
        return f"service:{self.p}_cost_usd:increase1h"

    @property
    def service_cost_baseline_avg(self) -> str:
        return f"service:{self.p}_cost_usd:increase1h_same_hour_avg7d"

    @property
    def service_cost_baseline_stddev(self) -> str:
        return f"service:{self.p}_cost_usd:increase1h_same_hour_stddev7d"

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

    @property
    def request_errors(self) -> str:
        return request_errors_metric(self.names)
