"""Performance: latency and time to first token by model, errors by model and type, throughput.

Histograms carry no attribution dimensions (cardinality), so the dimension filters do not apply
to the latency panels; they apply to the request-based ones.
"""

from __future__ import annotations

from typing import Any

from genai_meter.dashboards.common import Ctx, build, target
from genai_meter.dashboards.layout import Layout
from genai_meter.dashboards.overview import ERROR_COLORS, stat
from genai_meter.dashboards.panels import PERCENT, REQ_PER_SEC, SECONDS, TablePanel, TimeSeriesPanel, steps
from genai_meter.promql.links import ERROR_RATE_BY_MODEL, LATENCY_P95_BY_MODEL, PERFORMANCE_UID
from genai_meter.promql.names import FAILED, OUTPUT_SIDE

UID = PERFORMANCE_UID
TITLE = "GenAI Meter / Performance"
QUANTILES = ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
TOKENS_PER_SEC = "count:tokens/s"


def build_performance(ctx: Ctx) -> dict[str, Any]:
    r = ctx.r
    sm = ctx.service_model()
    hist = ctx.histogram()
    slow = steps(("green", None), ("orange", ctx.config.alerts.latency_p95_seconds / 2),
                 ("red", ctx.config.alerts.latency_p95_seconds))

    def over_range(rule: str, q: float, by: str = "") -> str:
        grouping = f"{by}, le" if by else "le"
        return f"histogram_quantile({q}, sum by ({grouping}) (sum_over_time({rule}{hist}[$__range])))"

    def live(rule: str, q: float, by: str = "model") -> str:
        return f"histogram_quantile({q}, sum by ({by}, le) ({rule}{hist}))"

    req = r.requests_increase15m
    failed = ctx.total(req, FAILED)
    lay = Layout()

    lay.row("Over the selected range")
    lay.add(stat("Latency p50", over_range(r.duration_bucket_increase15m, 0.5), SECONDS,
                 "Median request duration in the range.", slow, no_value=None), 4, 4)
    lay.add(stat("Latency p95", over_range(r.duration_bucket_increase15m, 0.95), SECONDS,
                 "95th percentile request duration in the range.", slow, no_value=None), 4, 4)
    lay.add(stat("Time to first token p95", over_range(r.ttft_bucket_increase15m, 0.95), SECONDS,
                 "95th percentile time to the first streamed token (streaming calls only).", no_value=None), 4, 4)
    lay.add(stat("Error rate", f"({failed} or vector(0))\n/\n{ctx.total(req)}", PERCENT,
                 "Failed calls as a share of all calls.", ERROR_COLORS), 4, 4)
    lay.add(stat("Requests per second", f"{ctx.total(req)} / $__range_s", REQ_PER_SEC,
                 "Average call rate over the range."), 4, 4)
    lay.add(stat("Output tokens per second", f"{ctx.total(r.tokens_increase15m, OUTPUT_SIDE)} / $__range_s",
                 TOKENS_PER_SEC, "Average output-token throughput over the range."), 4, 4)

    lay.row("Latency by model")
    for q, name in QUANTILES:
        lay.add(TimeSeriesPanel(
            title=f"Latency {name} by model", unit=SECONDS, colors=slow, thresholdLines=(q == 0.95),
            description=f"{name} of request duration over the last 5 minutes at each point, by model.",
            targets=[target(live(r.duration_bucket_rate5m, q), legend="{{model}}")]), 8, 8,
            LATENCY_P95_BY_MODEL if q == 0.95 else None)
    lay.add(TimeSeriesPanel(
        title="Time to first token by model", unit=SECONDS,
        description="p50 and p95 time to the first token over the last 5 minutes at each point, by model.",
        targets=[target(live(r.ttft_bucket_rate5m, 0.5), "A", "{{model}} p50"),
                 target(live(r.ttft_bucket_rate5m, 0.95), "B", "{{model}} p95")]), 12, 8)
    lay.add(TablePanel(
        title="Latency by model over the range", sortColumn="p95",
        description="Duration percentiles and p95 time to first token per model over the whole range.",
        columns={"A": ("p50", SECONDS), "B": ("p95", SECONDS), "C": ("p99", SECONDS), "D": ("TTFT p95", SECONDS)},
        targets=[target(over_range(r.duration_bucket_increase15m, 0.5, "model"), "A", instant=True, table=True),
                 target(over_range(r.duration_bucket_increase15m, 0.95, "model"), "B", instant=True, table=True),
                 target(over_range(r.duration_bucket_increase15m, 0.99, "model"), "C", instant=True, table=True),
                 target(over_range(r.ttft_bucket_increase15m, 0.95, "model"), "D", instant=True, table=True)]),
        12, 8)

    lay.row("Errors")
    rate_all = f"sum by (model) ({r.requests_rate5m}{sm})"
    rate_failed = f"sum by (model) ({r.requests_rate5m}{ctx.service_model(FAILED)})"
    lay.add(TimeSeriesPanel(
        title="Error rate by model", unit=PERCENT, colors=ERROR_COLORS, thresholdLines=True, min=0,
        description="Share of failed calls over the last 5 minutes at each point, by model.",
        targets=[target(f"({rate_failed} or {rate_all} * 0)\n/\n{rate_all}", legend="{{model}}")]), 8, 8,
        ERROR_RATE_BY_MODEL)
    lay.add(TimeSeriesPanel(
        title="Errors by error type", unit=REQ_PER_SEC, stacked=True,
        description="Failed calls per second by error type (from the error.type span attribute).",
        targets=[target(f"sum by (error_type) ({r.errors_rate5m}{sm})", legend="{{error_type}}")]), 8, 8)
    errors_by_type = f"sum by (model, error_type) (sum_over_time({r.errors_increase15m}{sm}[$__range]))"
    lay.add(TablePanel(
        title="Error rate by model and error type", sortColumn="Error rate",
        description="Failed calls of each error type as a share of the model's calls in the range.",
        columns={"A": ("Error rate", PERCENT), "B": ("Failed calls", "short")},
        targets=[target(f"{errors_by_type}\n/ on (model) group_left ()\n{ctx.total(req, by='model')}", "A",
                        instant=True, table=True),
                 target(errors_by_type, "B", instant=True, table=True)]), 8, 8)

    lay.row("Throughput")
    lay.add(TimeSeriesPanel(
        title="Requests per second by model", unit=REQ_PER_SEC, stacked=True,
        description="Call rate over the last 5 minutes at each point.",
        targets=[target(rate_all, legend="{{model}}")]), 12, 8)
    lay.add(TimeSeriesPanel(
        title="Output tokens per second by model", unit=TOKENS_PER_SEC, stacked=True,
        description="Output and reasoning tokens per second over the last 5 minutes at each point.",
        targets=[target(f"sum by (model) ({r.tokens_rate5m}{ctx.service_model(OUTPUT_SIDE)})",
                        legend="{{model}}")]), 12, 8)

    return build(uid=UID, title=TITLE, layout=lay, variables=ctx.variables(), time_from="24h",
                 description="LLM latency, time to first token, errors and throughput by model.")
