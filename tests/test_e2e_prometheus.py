"""End to end: generated rules and dashboards on a real Prometheus, alerts through a real Alertmanager.

1. Eight days of LLM usage history (the contract's metric names) are written as OpenMetrics and
   backfilled with `promtool tsdb create-blocks-from openmetrics`; the 15-minute recording rules
   are backfilled over it with `promtool tsdb create-blocks-from rules`, so baselines and
   period-over-period panels have data.
2. `genai-meter serve` runs on loopback, fed by the real OTel OTLP/HTTP span exporter; a real
   Prometheus scrapes it (job `genai-meter`) with the generated rules over the backfilled TSDB.
3. Every query of every panel of every dashboard (Grafana's variables substituted) returns data;
   every template variable has values.
4. Spend past a budget fires LLMBudgetExceeded; Alertmanager (the generated config) delivers one
   notification for the budget's group to a webhook receiver in the test, the lower thresholds
   inhibited, and no second one while Prometheus keeps re-sending within the repeat interval.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from genai_meter import contract as c
from genai_meter.alert_rules import build_alertmanager, build_prometheus_config
from genai_meter.alert_rules.alertmanager import BUDGET_TIMING
from genai_meter.alert_rules.naming import SCRAPE_JOB, RuleNames, request_errors_metric
from genai_meter.alert_rules.prometheus_config import RETENTION
from genai_meter.alert_rules.recording import GROUP_INCREASE15M
from genai_meter.config import BudgetConfig, Config, load_config
from genai_meter.contract import Contract
from genai_meter.generate import build_files
from tests.support.alertmanager import WebhookReceiver, start_alertmanager
from tests.support.otlp import start_serve
from tests.support.prometheus import Family, PrometheusError, backfill_openmetrics, backfill_rules, start_prometheus

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "deploy" / "genai-meter.yaml"
E2E_BUDGET = "e2e-live"  # only the live spans of customer e2e-live count against it
E2E_LIMIT_USD = "0.05"
HISTORY_DAYS = 8
SCRAPE_INTERVAL_S = 15  # Grafana's default $__rate_interval basis (datasource timeInterval)
RULE_BACKFILL_DAYS = 3

# Prices per million tokens the history is costed at (input, cache_read, cache_write, output).
PRICES = {("openai", "gpt-4o"): (2.5, 1.25, 0.0, 10.0), ("openai", "gpt-4o-mini"): (0.15, 0.075, 0.0, 0.6),
          ("anthropic", "claude-sonnet-4"): (3.0, 0.3, 3.75, 15.0)}


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

    @property
    def labels(self) -> dict[str, str]:
        return {"service_name": self.service, "environment": self.environment, "provider": self.provider,
                "model": self.model}

    @property
    def dims(self) -> dict[str, str]:
        return {"customer": self.customer, "feature": self.feature, "project": self.project}


WORKLOADS = [
    Workload("chat", "prod", "openai", "gpt-4o", "acme", "search", "research-x", 6, 1200, 400, 0, 300, 0, 0.02, 2.0),
    Workload("chat", "prod", "openai", "gpt-4o-mini", "globex", "chat", "web", 12, 800, 0, 0, 200, 0, 0.01, 0.8),
    Workload("rag", "prod", "anthropic", "claude-sonnet-4", "acme", "summarize", "research-x", 3, 3000, 2000, 500,
             600, 200, 0.03, 6.0),
    Workload("rag", "staging", "openai", "gpt-4o", "initech", "search", "web", 1, 1500, 0, 0, 250, 0, 0.05, 2.5),
]


def period_label(budget: BudgetConfig, t: float) -> str:
    """The processor's label for the budget period containing t (day / ISO week / month)."""
    local = datetime.fromtimestamp(t, timezone.utc) + budget.offset
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
    5-minute points, 1-minute points in the last two hours (so 5-minute rates work right away)."""
    n = Contract.from_config(config).names
    errors = request_errors_metric(n)
    base = {"job": SCRAPE_JOB, "instance": "history"}
    fam = {name: Family(name, kind) for name, kind in [
        (n.requests[:-6], "counter"), (n.tokens[:-6], "counter"), (n.cost[:-6], "counter"),
        (n.duration, "histogram"), (n.ttft, "histogram"), (n.unpriced[:-6], "counter"),
        (n.unmetered[:-6], "counter"), (n.price, "gauge"), (n.budget_spend[:-6], "counter"),
        (n.budget_tokens[:-6], "counter"), (n.budget_limit, "gauge"), (errors[:-6], "counter"),
        (c.SELF_SPANS_RECEIVED[:-6], "counter"), (c.SELF_SPANS_COUNTED[:-6], "counter"),
        (c.SELF_SPANS_SKIPPED[:-6], "counter"), (c.SELF_SPANS_SAMPLED[:-6], "counter"),
        (c.SELF_LABEL_OVERFLOW[:-6], "counter"), (c.SELF_SERIES_OVERFLOW[:-6], "counter")]}
    start = now - HISTORY_DAYS * 86400
    fine_from = now - 2 * 3600
    times = [start + 300 * i for i in range(int((fine_from - start) // 300))]
    times += [fine_from + 60 * i for i in range(int((now - 60 - fine_from) // 60) + 1)]
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
        hour = datetime.fromtimestamp(t, timezone.utc).hour
        daily = 0.35 + 0.65 * math.sin(math.pi * hour / 24) ** 2  # busier in the afternoon (UTC)
        for w in WORKLOADS:
            calls = w.per_minute * minutes * daily
            failed = calls * w.error_share
            call_labels = {**w.labels, **w.dims, "operation": "chat"}
            count(n.requests[:-6], n.requests, {**call_labels, "status": "ok"}, t, calls - failed)
            count(n.requests[:-6], n.requests, {**call_labels, "status": "error"}, t, failed)
            for i, error_type in enumerate(("RateLimitError", "APITimeoutError")):
                count(errors[:-6], errors,
                      {**w.labels, "operation": "chat", "error_type": error_type}, t, failed * (0.7 - 0.4 * i))
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
                histogram(fam[n.duration], totals, n.duration, {**w.labels, "operation": "chat", "status": status},
                          base, t, share, w.latency * factor, c.DURATION_BUCKETS)
            histogram(fam[n.ttft], totals, n.ttft, {**w.labels, "operation": "chat"}, base, t, calls,
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


# -- Grafana's variables ----------------------------------------------------------------------------

NICE_STEPS = [15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]


def parse_duration(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return int(text[:-1]) * units[text[-1]]


def grafana_interval(panel: dict[str, Any], range_s: int) -> int:
    """$__interval as Grafana computes it: range / max data points, at least the panel's min
    interval (or the scrape interval), rounded up to a round step."""
    minimum = parse_duration(panel["interval"]) if panel.get("interval") else SCRAPE_INTERVAL_S
    raw = max(minimum, math.ceil(range_s / panel.get("maxDataPoints", 1000)))
    return next((s for s in NICE_STEPS if s >= raw), NICE_STEPS[-1])


def substitute(expr: str, range_s: int, interval_s: int) -> str:
    rate_interval = max(interval_s + SCRAPE_INTERVAL_S, 4 * SCRAPE_INTERVAL_S)
    for name, value in (("$__range_s", str(range_s)), ("${__range}", f"{range_s}s"), ("$__range", f"{range_s}s"),
                        ("$__rate_interval", f"{rate_interval}s"), ("$__interval", f"{interval_s}s")):
        expr = expr.replace(name, value)
    return re.sub(r"\$\{?[A-Za-z_]+\}?", ".*", expr)  # every filter variable on "All"


def dashboard_queries(boards: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for board in boards.values():
        for panel in board["panels"]:
            for inner in [panel, *panel.get("panels", [])]:
                for target in inner.get("targets", []):
                    yield board["title"], inner, target


# -- live spans -------------------------------------------------------------------------------------

def tracer_for(endpoint: str, service: str, environment: str, project: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({
        "service.name": service, "deployment.environment.name": environment, "project.id": project}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=10)))
    return provider


def llm_call(provider: TracerProvider, *, model: str, customer: str, feature: str, input_tokens: int,
             output_tokens: int, cached: int = 0, error: str | None = None, ttft: float | None = None) -> None:
    """One chat call span with GenAI semantic-convention attributes (input includes cached)."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
        "gen_ai.response.model": model, "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens, "customer.id": customer, "feature.id": feature}
    if cached:
        attributes["gen_ai.usage.cache_read.input_tokens"] = cached
    if ttft is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = ttft
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    with tracer.start_as_current_span(f"chat {model}", attributes=attributes) as span:
        time.sleep(0.01)
        if error:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))


# -- the test ---------------------------------------------------------------------------------------

def e2e_config(workdir: Path) -> tuple[Config, Path]:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["budgets"].append({"name": E2E_BUDGET, "match": {"customer": E2E_BUDGET}, "period": "month",
                            "limit_usd": E2E_LIMIT_USD})
    path = workdir / "genai-meter.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_config(path), path


def test_generated_stack_end_to_end(tmp_path: Path) -> None:
    config, config_path = e2e_config(tmp_path)
    rules = RuleNames.of(Contract.from_config(config))
    deploy = tmp_path / "deploy"
    for relative, text in build_files(config).items():
        (deploy / relative).parent.mkdir(parents=True, exist_ok=True)
        (deploy / relative).write_text(text, encoding="utf-8")
    rule_files = sorted((deploy / "prometheus" / "rules").glob("*.yaml"))
    boards = {name: json.loads((deploy / "grafana" / "dashboards" / name).read_text())
              for name in sorted(p.name for p in (deploy / "grafana" / "dashboards").glob("*.json"))}
    data_dir = tmp_path / "tsdb"

    # 1. history, and the 15-minute recording rules over its last days
    now = time.time()
    samples = backfill_openmetrics(history(config, now), data_dir, tmp_path / "history")
    assert samples > 100_000
    increase15m = tmp_path / "increase15m.yaml"
    recording = yaml.safe_load((deploy / "prometheus" / "rules" / "genai-meter-recording.yaml").read_text())
    increase15m.write_text(yaml.safe_dump({"groups": [g for g in recording["groups"] if g["name"] == GROUP_INCREASE15M]}))
    with start_prometheus({"global": {"scrape_interval": "1m"}, "scrape_configs": []},
                          workdir=tmp_path / "backfill", data_dir=data_dir) as reader:
        backfill_rules([increase15m], url=reader.url, start=now - RULE_BACKFILL_DAYS * 86400, end=now,
                       data_dir=tmp_path / "rule-blocks-staging", workdir=tmp_path / "backfill")
    for block in (tmp_path / "rule-blocks-staging").iterdir():
        shutil.move(str(block), str(data_dir / block.name))

    # 2. serve <- OTel exporter; Prometheus scraping it with the generated rules; Alertmanager -> webhook
    serve = start_serve(config_path)
    hook = WebhookReceiver().start()
    am = start_alertmanager(build_alertmanager(config, webhook_url=hook.url), workdir=tmp_path / "am")
    prom_config = build_prometheus_config(config, meter_targets=[serve.metrics], alertmanager_targets=[am.target],
                                          rule_files=[str(p) for p in rule_files], scrape_interval="1s",
                                          evaluation_interval="1s", self_target=None)
    prom = start_prometheus(prom_config, workdir=tmp_path / "prom", data_dir=data_dir, retention=RETENTION,
                            extra_flags=["--rules.alert.resend-delay=2s"])
    tracers: list[TracerProvider] = []
    try:
        assert prom.api("status/runtimeinfo")["storageRetention"] == RETENTION
        endpoint = f"http://{serve.http}/v1/traces"
        chat = tracer_for(endpoint, "chat", "prod", "research-x")
        rag = tracer_for(endpoint, "rag", "staging", "web")
        tracers += [chat, rag]
        llm_call(chat, model="gpt-4o", customer="acme", feature="search", input_tokens=1200, output_tokens=300,
                 cached=400, ttft=0.4)
        llm_call(chat, model="gpt-4o-mini", customer="globex", feature="chat", input_tokens=800, output_tokens=200)
        llm_call(rag, model="gpt-4o", customer="initech", feature="search", input_tokens=900, output_tokens=100,
                 error="RateLimitError")
        llm_call(chat, model="gpt-4o", customer=E2E_BUDGET, feature="chat", input_tokens=10, output_tokens=1)
        budget_series = f'{Contract.from_config(config).names.budget_spend}{{budget="{E2E_BUDGET}"}}'
        prom.wait_for(lambda: prom.query(f"count_over_time({budget_series}[1m]) >= 2"), timeout=30)
        prom.wait_for(lambda: prom.query(f'{rules.budget_ratio}{{budget="{E2E_BUDGET}"}}'), timeout=30)

        # 4a. cross the budget: 20,000 output tokens of gpt-4o = 0.20 USD against 0.05
        llm_call(chat, model="gpt-4o", customer=E2E_BUDGET, feature="chat", input_tokens=1000, output_tokens=20000)
        crossed = time.monotonic()
        firing = prom.wait_for(lambda: [a for a in prom.alerts() if a["labels"]["alertname"] == "LLMBudgetExceeded"
                                        and a["labels"].get("budget") == E2E_BUDGET and a["state"] == "firing"],
                               timeout=30)
        assert firing[0]["labels"]["severity"] == "critical"

        # 3. every panel query of every dashboard, over the last 24 hours (while Alertmanager waits)
        prom.wait_for(lambda: prom.query(rules.requests_rate5m), timeout=30)
        end = time.time()
        range_s = 86400
        empty, checked = [], 0
        for title, panel, target in dashboard_queries(boards):
            interval = grafana_interval(panel, range_s)
            expr = substitute(target["expr"], range_s, interval)
            try:
                if target.get("instant"):
                    result = prom.query(expr, at=end)
                else:
                    result = prom.query_range(expr, end - range_s, end, interval)
            except PrometheusError as exc:
                empty.append(f"{title} / {panel['title']} [{target['refId']}]: error {exc}")
                continue
            checked += 1
            if not result:
                empty.append(f"{title} / {panel['title']} [{target['refId']}]: no data\n    {expr}")
        assert not empty, "panel queries without data:\n" + "\n".join(empty)
        assert checked > 100
        for board in boards.values():
            for variable in board["templating"]["list"][1:]:
                query = variable["definition"]
                metric_match = re.fullmatch(r"label_values\((.+), (\w+)\)", query, re.S)
                assert metric_match, query
                selector = substitute(metric_match.group(1), range_s, 60)
                values = prom.api(f"label/{metric_match.group(2)}/values",
                                  {"match[]": selector, "start": f"{end - range_s:.0f}", "end": f"{end:.0f}"},
                                  method="GET")
                assert values, f"{board['title']}: variable {variable['name']} has no values"

        # 4b. one notification for the budget's group, on the critical receiver, lower thresholds inhibited
        def budget_posts(posts):
            return [p for p in posts if p.group_labels.get("budget") == E2E_BUDGET]

        first = hook.wait_for(budget_posts, timeout=parse_duration(BUDGET_TIMING["group_wait"]) + 45)
        assert len(first) == 1, [(p.path, p.alertnames) for p in first]
        post = first[0]
        assert post.path == "/critical" and post.alertnames == ["LLMBudgetExceeded"], (post.path, post.alertnames)
        alert = post.payload["alerts"][0]
        assert alert["status"] == "firing" and alert["labels"]["budget"] == E2E_BUDGET
        assert alert["annotations"]["runbook_url"].endswith("#llmbudgetexceeded")
        assert "of its limit" in alert["annotations"]["description"]
        suppressed = [a for a in am.alerts() if a["labels"].get("budget") == E2E_BUDGET
                      and a["labels"]["alertname"] == "LLMBudgetThresholdReached"]
        assert {a["labels"]["threshold"] for a in suppressed} == {"75", "90", "95"}
        assert all(a["status"]["state"] == "suppressed" for a in suppressed), suppressed
        # Prometheus re-sends every 2 s; within the group interval and the 24 h repeat nothing new goes out.
        time.sleep(12)
        assert len(budget_posts(hook.snapshot())) == 1
        print(f"\ne2e: {samples} history samples backfilled; {checked} panel queries with data; "
              f"budget crossing -> webhook in {post.received - crossed:.1f} s (group_wait "
              f"{BUDGET_TIMING['group_wait']}); {len(hook.snapshot())} webhook posts in all")
    finally:
        for tracer in tracers:
            tracer.shutdown()
        prom.stop()
        am.stop()
        hook.stop()
        serve.stop()
