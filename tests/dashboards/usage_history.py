"""Eight days of LLM usage history, as the processor would have exported it, for the end-to-end
dashboard test: the workloads (services, models, customers, organizations, operations) and their
cumulative counters, histograms and gauges as OpenMetrics families to backfill."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from genai_meter import contract as c
from genai_meter.config import BudgetConfig, Config
from genai_meter.contract import Contract
from genai_meter.promql.names import SCRAPE_JOB
from tests.support.prometheus import Family

HISTORY_DAYS = 8
E2E_BUDGET = "e2e-live"  # a budget of live spans only: the history never counts against it
# Prices per million tokens the history is costed at (input, cache_read, cache_write, output).
PRICES = {("openai", "gpt-4o"): (2.5, 1.25, 0.0, 10.0), ("openai", "gpt-4o-mini"): (0.15, 0.075, 0.0, 0.6),
          ("anthropic", "claude-sonnet-4"): (3.0, 0.3, 3.75, 15.0),
          ("openai", "text-embedding-3-small"): (0.02, 0.0, 0.0, 0.0)}


@dataclass(frozen=True)
class Workload:
    """One stream of calls in the history: who calls which model how often, and what it costs."""

    service: str
    environment: str
    provider: str
    model: str
    customer: str
    feature: str
    project: str
    per_minute: float  # calls per minute at the daily peak
    input: int  # tokens per call by class
    cache_read: int
    cache_write: int
    output: int
    reasoning: int
    error_share: float
    latency: float  # typical duration, seconds
    organization: str = "org-a"
    operation: str = "chat"

    @property
    def labels(self) -> dict[str, str]:
        return {"service_name": self.service, "environment": self.environment, "provider": self.provider,
                "model": self.model}

    @property
    def dims(self) -> dict[str, str]:
        return {"customer": self.customer, "feature": self.feature, "project": self.project,
                "organization": self.organization}


WORKLOADS = [
    Workload("chat", "prod", "openai", "gpt-4o", "acme", "search", "research-x", 6, 1200, 400, 0, 300, 0, 0.02, 2.0),
    Workload("chat", "prod", "openai", "gpt-4o-mini", "globex", "chat", "web", 12, 800, 0, 0, 200, 0, 0.01, 0.8),
    Workload("rag", "prod", "anthropic", "claude-sonnet-4", "acme", "summarize", "research-x", 3, 3000, 2000, 500,
             600, 200, 0.03, 6.0),
    Workload("rag", "staging", "openai", "gpt-4o", "initech", "search", "web", 1, 1500, 0, 0, 250, 0, 0.05, 2.5,
             "org-b"),
    Workload("rag", "prod", "openai", "text-embedding-3-small", "globex", "search", "web", 8, 500, 0, 0, 0, 0, 0.0,
             0.2, "org-b", "embeddings"),
]


def period_label(budget: BudgetConfig, t: float) -> str:
    """The processor's label for the budget period containing t (day / ISO week / month)."""
    local = datetime.fromtimestamp(t, UTC) + budget.offset
    if budget.period == "day":
        return local.date().isoformat()
    if budget.period == "week":
        year, week, _ = (local.date() - timedelta(days=local.weekday())).isocalendar()
        return f"{year:04d}-W{week:02d}"
    return f"{local.year:04d}-{local.month:02d}"


def budget_matches(budget: BudgetConfig, labels: dict[str, str]) -> bool:
    for label, pattern in budget.match.items():
        value = labels.get(label, "")
        if pattern.startswith("~"):
            if not re.fullmatch(pattern[1:], value):
                return False
        elif value != pattern:
            return False
    return True


def history(config: Config, now: float) -> list[Family]:
    """Eight days of cumulative counters, histograms and gauges as the processor would export them:
    5-minute points, 30-second points in the last two hours (so 5-minute rates and the 1-minute
    buckets work right away)."""
    n = Contract.from_config(config).names
    errors = n.request_errors
    base = {"job": SCRAPE_JOB, "instance": "history"}
    fam = {name: Family(name, kind) for name, kind in [
        (n.requests[:-6], "counter"), (n.tokens[:-6], "counter"), (n.cost[:-6], "counter"),
        (n.duration, "histogram"), (n.ttft, "histogram"), (n.unpriced[:-6], "counter"),
        (n.unmetered[:-6], "counter"), (n.price, "gauge"), (n.budget_spend[:-6], "counter"),
        (n.budget_tokens[:-6], "counter"), (n.budget_limit, "gauge"), (errors[:-6], "counter"),
        (c.SELF_SPANS_RECEIVED[:-6], "counter"), (c.SELF_SPANS_COUNTED[:-6], "counter"),
        (c.SELF_SPANS_SKIPPED[:-6], "counter"), (c.SELF_SPANS_SAMPLED[:-6], "counter"),
        (c.SELF_LABEL_OVERFLOW[:-6], "counter"), (c.SELF_SERIES_OVERFLOW[:-6], "counter"),
        (n.tool_calls[:-6], "counter")]}
    start = now - HISTORY_DAYS * 86400
    fine_from = now - 2 * 3600
    times = [start + 300 * i for i in range(int((fine_from - start) // 300))]
    times += [fine_from + 30 * i for i in range(int((now - 60 - fine_from) // 30) + 1)]
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    touched: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, dict[str, str]]] = {}

    def count(family: str, sample: str, labels: dict[str, str], t: float, add: float) -> None:
        """Add to a counter; its point for time t is written once all of t is counted."""
        key = (sample, tuple(sorted(labels.items())))
        totals[key] = totals.get(key, 0.0) + add
        touched[key] = (family, labels)

    budgets = list(config.budgets)
    previous = start
    for t in times:
        minutes = (t - previous) / 60 or 5.0
        previous = t
        hour = datetime.fromtimestamp(t, UTC).hour
        daily = 0.35 + 0.65 * math.sin(math.pi * hour / 24) ** 2  # busier in the afternoon (UTC)
        for w in WORKLOADS:
            calls = w.per_minute * minutes * daily
            failed = calls * w.error_share
            call_labels = {**w.labels, **w.dims, "operation": w.operation}
            count(n.requests[:-6], n.requests, {**call_labels, "status": "ok"}, t, calls - failed)
            count(n.requests[:-6], n.requests, {**call_labels, "status": "error"}, t, failed)
            for i, error_type in enumerate(("RateLimitError", "APITimeoutError")):
                count(errors[:-6], errors,
                      {**w.labels, "operation": w.operation, "error_type": error_type}, t, failed * (0.7 - 0.4 * i))
            prices = PRICES[(w.provider, w.model)]
            tokens = {"input": w.input, "cache_read": w.cache_read, "cache_write": w.cache_write,
                      "output": w.output, "reasoning": w.reasoning}
            price_of = {"input": prices[0], "cache_read": prices[1], "cache_write": prices[2],
                        "output": prices[3], "reasoning": prices[3]}
            spend = 0.0
            for token_type, per_call in tokens.items():
                if per_call:
                    count(n.tokens[:-6], n.tokens, {**call_labels, "token_type": token_type}, t, per_call * calls)
                    cost = per_call * calls * price_of[token_type] / 1e6
                    spend += cost
                    count(n.cost[:-6], n.cost, {**call_labels, "cost_type": token_type}, t, cost)
            used = sum(tokens.values()) * calls
            for status, share, factor in (("ok", calls - failed, 1.0), ("error", failed, 0.3)):
                histogram(fam[n.duration], totals, n.duration, {**w.labels, "operation": w.operation, "status": status},
                          base, t, share, w.latency * factor, c.DURATION_BUCKETS)
            histogram(fam[n.ttft], totals, n.ttft, {**w.labels, "operation": w.operation}, base, t, calls,
                      w.latency / 8, c.TTFT_BUCKETS)
            for budget in budgets:
                if budget.name != E2E_BUDGET and budget_matches(budget, {**w.labels, **w.dims}):
                    labels = {"budget": budget.name, "period": period_label(budget, t)}
                    count(n.budget_spend[:-6], n.budget_spend, labels, t, spend)
                    count(n.budget_tokens[:-6], n.budget_tokens, labels, t, used)
            count(c.SELF_SPANS_RECEIVED[:-6], c.SELF_SPANS_RECEIVED, {}, t, calls * 1.5)
            count(c.SELF_SPANS_COUNTED[:-6], c.SELF_SPANS_COUNTED, {}, t, calls)
            count(c.SELF_SPANS_SKIPPED[:-6], c.SELF_SPANS_SKIPPED, {"reason": c.SKIP_NOT_LLM}, t, calls / 2)
        for provider, model in PRICES:
            for token_type, price in zip(("input", "cache_read", "cache_write", "output"), PRICES[(provider, model)]):
                if price:
                    fam[n.price].add(n.price, {"provider": provider, "model": model, "token_type": token_type, **base},
                                     t, price)
        for budget in budgets:
            fam[n.budget_limit].add(n.budget_limit, {"budget": budget.name, "unit": budget.unit, **base}, t,
                                    float(budget.limit))
        count(n.unpriced[:-6], n.unpriced, {"service_name": "rag", "provider": "self-hosted", "model": "llama-ft"},
              t, 0.5 * minutes)
        count(n.unmetered[:-6], n.unmetered, {"service_name": "chat", "provider": "openai", "model": "gpt-4o",
                                             "reason": c.UNMETERED_NO_USAGE}, t, 0.1 * minutes)
        count(c.SELF_SPANS_SAMPLED[:-6], c.SELF_SPANS_SAMPLED, {}, t, 0.0)
        for tool, per_minute, status in (("web_search", 2.0, "ok"), ("sql_query", 0.8, "ok"), ("sql_query", 0.1, "error")):
            count(n.tool_calls[:-6], n.tool_calls, {"service_name": "agent", "environment": "prod", "tool_name": tool,
                                                    "status": status}, t, per_minute * minutes * daily)
        count(c.SELF_LABEL_OVERFLOW[:-6], c.SELF_LABEL_OVERFLOW, {"dimension": "customer"}, t, 0.01 * minutes)
        count(c.SELF_SERIES_OVERFLOW[:-6], c.SELF_SERIES_OVERFLOW, {"metric": n.requests}, t, 0.0)
        for key, (family, labels) in touched.items():
            fam[family].add(key[0], {**labels, **base}, t, totals[key])
        touched.clear()
    return list(fam.values())


def histogram(family: Family, totals: dict, name: str, labels: dict[str, str], base: dict[str, str], t: float,
              observations: float, typical: float, bounds: tuple[float, ...]) -> None:
    """Spread `observations` around `typical` seconds (log-normal-ish) over the buckets."""
    def share_below(bound: float) -> float:
        return 1 / (1 + (typical / bound) ** 3)

    key_labels = tuple(sorted(labels.items()))
    for bound in (*bounds, math.inf):
        le = "+Inf" if bound == math.inf else repr(float(bound))
        key = (f"{name}_bucket", key_labels + (("le", le),))
        totals[key] = totals.get(key, 0.0) + observations * (1.0 if bound == math.inf else share_below(bound))
        family.add(f"{name}_bucket", {**labels, "le": le, **base}, t, totals[key])
    for suffix, add in (("_count", observations), ("_sum", observations * typical)):
        key = (name + suffix, key_labels)
        totals[key] = totals.get(key, 0.0) + add
        family.add(name + suffix, {**labels, **base}, t, totals[key])
