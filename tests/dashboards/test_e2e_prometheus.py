"""End to end: generated rules and dashboards on a real Prometheus, alerts through a real Alertmanager.

1. Eight days of LLM usage history (the contract's metric names) are written as OpenMetrics and
   backfilled with `promtool tsdb create-blocks-from openmetrics`; the 15-minute recording rules
   are backfilled over it with `promtool tsdb create-blocks-from rules`, so baselines and
   period-over-period panels have data.
2. `genai-meter serve` runs on loopback, fed by the real OTel OTLP/HTTP span exporter; a real
   Prometheus scrapes it (job `genai-meter`) with the generated rules over the backfilled TSDB.
3. Every query of every panel of every dashboard (Grafana's variables substituted, each query at
   its own minimum step) returns data; the range-tiered series panels return data from their
   1-minute, 1-hour and 1-day tiers at 6 hours, 24 hours and 30 days (and only from that tier);
   "Requests by model" lists a priced model nobody called at 0; every template variable has values;
   the live stat totals move within one scrape of a new call.
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
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from genai_meter.alert_rules import build_alertmanager, build_prometheus_config
from genai_meter.alert_rules.alertmanager import BUDGET_TIMING
from genai_meter.alert_rules.prometheus_config import RETENTION
from genai_meter.alert_rules.recording import GROUP_INCREASE15M
from genai_meter.config import Config, load_config
from genai_meter.contract import Contract
from genai_meter.generate import build_files
from genai_meter.promql.links import REQUESTS_BY_MODEL, USAGE_UID
from genai_meter.promql.names import RuleNames
from tests.dashboards.usage_history import E2E_BUDGET, history, period_label
from tests.support.alertmanager import WebhookReceiver, start_alertmanager
from tests.support.otlp import start_serve
from tests.support.prometheus import (
    PrometheusError,
    backfill_openmetrics,
    backfill_rules,
    start_prometheus,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "genai-meter.yaml"
E2E_LIMIT_USD = "0.05"
SCRAPE_INTERVAL_S = 15  # Grafana's default $__rate_interval basis (datasource timeInterval)
RULE_BACKFILL_DAYS = 3
LIVE_SCRAPE_S = 1  # the scrape interval of the live Prometheus below

UNCALLED_MODEL = ("openai", "gpt-4.1")  # in the price catalog, never called: "Requests by model" shows it at 0
TIER_RANGES = {"1m": 3600, "1h": 86400, "1d": 30 * 86400}  # a dashboard preset each tier serves (1h, 24h, 30d)


# -- Grafana's variables ----------------------------------------------------------------------------

NICE_STEPS = [15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]


def parse_duration(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return int(text[:-1]) * units[text[-1]]


def grafana_interval(panel: dict[str, Any], range_s: int, target: dict[str, Any] | None = None) -> int:
    """$__interval as Grafana computes it: range / max data points, at least the panel's min
    interval (or the scrape interval), rounded up to a round step; a query's own minimum step
    ("interval" on the target) raises it."""
    minimum = parse_duration(panel["interval"]) if panel.get("interval") else SCRAPE_INTERVAL_S
    raw = max(minimum, math.ceil(range_s / panel.get("maxDataPoints", 1000)))
    step = next((s for s in NICE_STEPS if s >= raw), NICE_STEPS[-1])
    if target is not None and target.get("interval"):
        step = max(step, parse_duration(target["interval"]))
    return step


def panel_range(panel: dict[str, Any], end: float, default: int) -> int:
    """The range a panel queries: its own relative time ("1h", "now/d" = since UTC midnight) or the dashboard's."""
    own = panel.get("timeFrom")
    if own == "now/d":
        return int(end - end // 86400 * 86400)
    return parse_duration(own) if own else default


def run_query(prom, panel: dict[str, Any], target: dict[str, Any], range_s: int, end: float,
              variables: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One panel query as Grafana would send it for a range of `range_s` ending at `end` (the
    dashboard variables in `variables`, the others on All)."""
    step = grafana_interval(panel, range_s, target)
    expr = substitute(target["expr"], range_s, step, variables)
    if target.get("instant"):
        return prom.query(expr, at=end)
    return prom.query_range(expr, end - range_s, end, step)


def substitute(expr: str, range_s: int, interval_s: int, variables: dict[str, str] | None = None) -> str:
    for name, value in (variables or {}).items():
        expr = expr.replace(f"${name}", value)
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
                                          rule_files=[str(p) for p in rule_files], scrape_interval=f"{LIVE_SCRAPE_S}s",
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

        # 3. every panel query of every dashboard, over the last 24 hours (while Alertmanager waits); the
        #    range-tiered series queries at the range of each tier: data from their own tier only
        prom.wait_for(lambda: prom.query(rules.requests_rate5m), timeout=30)
        end = time.time()
        range_s = 86400
        empty, checked, tiered = [], 0, 0
        for title, panel, target in dashboard_queries(boards):
            name = f"{title} / {panel['title']} [{target['refId']}]"
            try:
                if target.get("interval") in TIER_RANGES:
                    tiered += 1
                    for tier, tier_range in TIER_RANGES.items():
                        result = run_query(prom, panel, target, tier_range, end)
                        if tier == target["interval"] and not result:
                            empty.append(f"{name}: no data at its tier's range {tier_range}s\n    {target['expr']}")
                        elif tier == target["interval"]:
                            times = sorted({float(t) for row in result for t, _ in row["values"]})
                            steps = {round(b - a) for a, b in zip(times, times[1:], strict=False)}
                            bucket = parse_duration(tier)  # one point per bucket (a bucket without calls has none)
                            assert min(steps) == bucket and all(x % bucket == 0 for x in steps), (name, steps)
                        elif tier != target["interval"] and result:
                            empty.append(f"{name}: data at the {tier} tier's range {tier_range}s (guard)")
                    checked += 1
                    continue
                result = run_query(prom, panel, target, panel_range(panel, end, range_s), end)
            except PrometheusError as exc:
                empty.append(f"{name}: error {exc}")
                continue
            checked += 1
            if not result:
                empty.append(f"{name}: no data\n    {substitute(target['expr'], range_s, 60)}")
        assert not empty, "panel queries without data:\n" + "\n".join(empty)
        assert checked > 150 and tiered >= 15

        # 3b. requests by model: the called models with their counts, a priced model nobody called at 0
        usage = boards[f"{USAGE_UID}.json"]
        by_model = next(p for p in usage["panels"] if p["id"] == REQUESTS_BY_MODEL.panel_id)
        assert by_model["title"] == "Requests by model"
        rows = {(r["metric"]["provider"], r["metric"]["model"]): float(r["value"][1])
                for r in run_query(prom, by_model, by_model["targets"][0], range_s, end)}
        assert rows[UNCALLED_MODEL] == 0.0
        assert rows[("openai", "gpt-4o")] > 1000 and rows[("anthropic", "claude-sonnet-4")] > 100
        assert ("self-hosted", "llama-ft") not in rows  # unpriced and never requested
        busiest = next(p for p in usage["panels"] if p["title"] == "Busiest hours of day by day of week")
        cells = run_query(prom, busiest, busiest["targets"][0], 7 * 86400, end)
        assert len(cells) >= 24 * RULE_BACKFILL_DAYS - 2 and {len(c["metric"]["hour"]) for c in cells} == {2}
        assert {c["metric"]["weekday"] for c in cells} <= {"1 Mon", "2 Tue", "3 Wed", "4 Thu", "5 Fri", "6 Sat",
                                                          "7 Sun"}

        # 3c. the live totals move within one scrape of a new call (an existing series and a new one)
        overview = boards["genai-meter-overview.json"]
        live = next(p for p in overview["panels"] if p["title"] == "Requests last hour")
        assert live["timeFrom"] == "1h"

        def live_requests(customer: str) -> float:
            # Filtered to a customer without history: the history's calls leave the sliding hour meanwhile.
            now = time.time()
            rows = run_query(prom, live, live["targets"][0], panel_range(live, now, range_s), now,
                             {"customer": customer})
            return float(rows[0]["value"][1])

        # an existing series (two calls of customer e2e-live above), then one born with the call
        for customer in (E2E_BUDGET, "brand-new-customer"):
            before = live_requests(customer)
            llm_call(chat, model="gpt-4o", customer=customer, feature="chat", input_tokens=10, output_tokens=1)
            called = time.monotonic()
            moved = wait_until(lambda c=customer, b=before: live_requests(c) >= b + 1, timeout=10, interval=0.1)
            took = time.monotonic() - called
            assert moved, f"live requests did not move after a call ({customer}): {before}"
            assert took <= 2 * LIVE_SCRAPE_S + 1, f"live requests moved {took:.1f} s after the call"
            assert live_requests(customer) == before + 1
            print(f"\ne2e: live requests ({customer}) {before:g} -> {before + 1:g}, {took:.2f} s after the call")

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
        period = period_label(config.budgets[-1], time.time())
        assert alert["annotations"]["summary"] == f"LLM budget {E2E_BUDGET} is exceeded in period {period}."
        assert alert["annotations"]["dashboard_url"].endswith(
            f"/d/genai-meter-budgets?viewPanel=100&from=now-24h&to=now&var-budget={E2E_BUDGET}")
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
