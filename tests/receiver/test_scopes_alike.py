"""The same gen_ai.* spans are metered alike under any instrumentation scope: openai-v2's, OpenLLMetry's,
OpenInference's and an app's own (`my-company.llm`). The scope is a hint; the keys decide. Each request of
traces (an HTTP root, model calls of current and legacy keys, service tiers, a batch flag, cache reads,
errors, a per-call unit) goes through a real `Ingestor` with a SQLite ledger, with bulk counting (the C
tally where built) and call by call: /metrics and the ledger's rows are the same under every scope and on
both paths, and bulk counting takes the templated calls under every scope alike. One thing the scope tells
is kept: openai-v2 reports no cached tokens, so under its scope a call whose span has no cached-token key
(the legacy keys here) is flagged `cache_unknown` (llm_unmetered_requests_total), as its recorded spans are.
"""

from __future__ import annotations

import math
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from genai_meter.collector_processor.metering import build_meter
from genai_meter.collector_processor.metering.meter import Meter
from genai_meter.collector_processor.metering.tally import Tally
from genai_meter.collector_processor.receiver.decode import MEDIA_PROTOBUF, decode
from genai_meter.collector_processor.receiver.dedup import SeenSpans
from genai_meter.collector_processor.receiver.ingest import Ingestor
from genai_meter.config import Config
from genai_meter.conventions import Conventions
from genai_meter.exporters import UsageMetrics
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from genai_meter.pricing import PriceBook
from tests.support.otlp import key_values

DIMENSIONS = {"customer": {"attributes": ["customer.id"]}}
# gpt-4o's tier and batch prices from the override file never change with time: those calls are counted in bulk
# too (the catalog's variants start on a date, so its tier calls are assessed one by one)
TIER_PRICES = """- provider: openai
  model: gpt-4o
  prices: {input_mtok: "2.5", output_mtok: "10", cache_read_mtok: "1.25"}
  service_tiers:
    flex: {input_mtok: "1.25", output_mtok: "5", cache_read_mtok: "0.625"}
    priority: {input_mtok: "4.25", output_mtok: "17", cache_read_mtok: "2.125"}
  batch: {input_mtok: "1.25", output_mtok: "5"}
"""
SCOPES = ("opentelemetry.instrumentation.openai_v2", "opentelemetry.instrumentation.openai.v1",
          "openinference.instrumentation.openai", "my-company.llm")
TRACES = 60
UNMETERED = "llm_unmetered_requests_total"


def total_of(samples: dict[Any, float], name: str) -> float:
    return sum(value for (sample, _), value in samples.items() if sample == name)


def _model_call(rng: random.Random, i: int) -> dict[str, Any]:
    """A gen_ai.* model call: current or legacy keys, a tier, batch or a unit on some."""
    inp, out = rng.randint(50, 8000), rng.randint(10, 1500)
    model = rng.choice(("gpt-4o", "gpt-4o-mini", "gpt-5-mini"))
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                             "gen_ai.response.model": model, "gen_ai.response.id": f"chatcmpl-{i}",
                             "customer.id": rng.choice(("acme", "globex", "initech"))}
    if i % 5 == 4:  # legacy keys
        attrs.update({"gen_ai.system": "openai", "gen_ai.usage.prompt_tokens": inp,
                      "gen_ai.usage.completion_tokens": out})
    else:
        attrs.update({"gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": inp,
                      "gen_ai.usage.output_tokens": out,
                      "gen_ai.usage.cache_read.input_tokens": rng.choice((0, inp // 2))})
    kind = i % 7
    if kind == 1:
        attrs["openai.response.service_tier"] = rng.choice(("flex", "priority", "default"))
    elif kind == 2:
        attrs["gen_ai.openai.request.service_tier"] = "flex"
    elif kind == 3:
        attrs["genai_meter.batch"] = True
    elif kind == 5:
        attrs["genai_meter.usage.web_searches"] = rng.randint(1, 3)
    elif kind == 6:
        attrs["error.type"] = "timeout"
    return attrs


def _body(scope: str, seed: int) -> bytes:
    """Traces of an HTTP root and two model calls (the second a child of the first), all under `scope`."""
    rng = random.Random(seed)
    end = time.time_ns() - 10**9
    spans = []
    for t in range(TRACES):
        trace_id = (seed * 10**6 + t + 1).to_bytes(16, "big")
        root = (3 * t + 1).to_bytes(8, "big")
        spans.append(Span(trace_id=trace_id, span_id=root, name="POST /answer", kind=Span.SPAN_KIND_SERVER,
                          start_time_unix_nano=end - 3 * 10**9, end_time_unix_nano=end,
                          attributes=key_values({"http.request.method": "POST", "http.route": "/answer"})))
        for k in (2, 3):
            attrs = _model_call(rng, 3 * t + k)
            spans.append(Span(trace_id=trace_id, span_id=(3 * t + k).to_bytes(8, "big"), parent_span_id=root,
                              name=f"chat {attrs['gen_ai.request.model']}", kind=Span.SPAN_KIND_CLIENT,
                              start_time_unix_nano=end - 2 * 10**9, end_time_unix_nano=end - 10**9 + k,
                              attributes=key_values(attrs)))
    rs = ResourceSpans()
    rs.resource.attributes.extend(key_values({"service.name": "support", "deployment.environment.name": "prod"}))
    ss = ScopeSpans()
    ss.scope.name = scope
    ss.spans.extend(spans)
    rs.scope_spans.append(ss)
    return ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString()


def _rescoped(body: bytes, scope: str) -> bytes:
    """`body` with every scope name set to `scope` (ids, times and attributes unchanged)."""
    request = ExportTraceServiceRequest.FromString(body)
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            ss.scope.name = scope
    return request.SerializeToString()


def _meter(tmp: Path, config: Config, *, bulk: bool) -> tuple[Ingestor, UsageMetrics, SQLiteWriter, list[int]]:
    """An ingestor with a SQLite ledger in `tmp`; the list counts the calls bulk counting took."""
    metrics = UsageMetrics(config, serve=True)
    meter = (build_meter(config, [metrics]) if bulk else
             Meter(config, [metrics], conventions=Conventions(config), prices=PriceBook.from_config(config),
                   templates=False))
    meter.bulk = bulk
    taken: list[int] = []
    record_tally = meter.record_tally

    def counting(tally: Tally, keep: Any = None) -> tuple[int, int]:
        taken.append(len(tally.taken))
        return record_tally(tally, keep)

    meter.record_tally = counting  # type: ignore[method-assign]
    tmp.mkdir()
    writer = SQLiteWriter(tmp / "ledger.db", config)
    seen = SeenSpans(config.limits.dedup_window_seconds, config.limits.dedup_max_entries)
    return Ingestor(meter, metrics, seen, ledger=writer), metrics, writer, taken


def _ledger(path: Path) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The ledger's calls with their label set and price by content (ids are given in the order bulk counting
    meets them), but their `unmetered` flag; the flags apart, in the same order."""
    conn = sqlite3.connect(path)
    try:
        labels = [row[1] for row in conn.execute("PRAGMA table_info(labelsets)") if row[1] != "id"]
        columns = [row[1] for row in conn.execute("PRAGMA table_info(calls)")
                   if row[1] not in ("unmetered", "labelset", "price")]
        order = "ORDER BY c.end_ns, c.trace_id, c.span_id"
        calls = conn.execute(
            f"SELECT {', '.join('c.' + c for c in columns)}, {', '.join('l.' + c for c in labels)}, p.source, "
            f"p.version, p.entry, p.unit_prices FROM calls c JOIN labelsets l ON l.id = c.labelset "
            f"JOIN prices p ON p.id = c.price {order}").fetchall()
        return calls, [row[0] for row in conn.execute(f"SELECT c.unmetered FROM calls c {order}")]
    finally:
        conn.close()


def _legacy_flags(bodies: list[bytes]) -> list[str]:
    """The `unmetered` flag openai-v2's scope gives each model call of `bodies`, in ledger order."""
    calls = sorted((span.end_time_unix_nano, span.trace_id, span.span_id,
                    any(kv.key == "gen_ai.usage.prompt_tokens" for kv in span.attributes))
                   for body in bodies for rs in ExportTraceServiceRequest.FromString(body).resource_spans
                   for ss in rs.scope_spans for span in ss.spans if span.parent_span_id)
    return ["cache_unknown" if legacy else "" for *_, legacy in calls]


@pytest.mark.parametrize("tier_prices", [False, True])
def test_the_same_gen_ai_spans_are_metered_alike_under_any_scope(tmp_path: Path, tier_prices: bool) -> None:
    pricing = {}
    if tier_prices:
        (tmp_path / "prices.yaml").write_text(TIER_PRICES)
        pricing = {"overrides": str(tmp_path / "prices.yaml")}
    config = Config.model_validate({"dimensions": DIMENSIONS, "pricing": pricing})
    bodies = [_body(SCOPES[0], seed) for seed in (1, 2, 3)]
    results = {}
    for scope in SCOPES:
        for bulk in (True, False):
            ingestor, metrics, writer, taken = _meter(tmp_path / f"{scope}-{bulk}", config, bulk=bulk)
            outcomes = [ingestor.export(decode(_rescoped(body, scope), MEDIA_PROTOBUF)) for body in bodies]
            writer.close()
            results[scope, bulk] = (outcomes, metrics.samples(), _ledger(tmp_path / f"{scope}-{bulk}" / "ledger.db"),
                                    sum(taken))
    outcomes, samples, (ledger, flags), _ = results[SCOPES[-1], False]
    assert sum(o.counted for o in outcomes) == 2 * TRACES * len(bodies)
    assert len(ledger) == 2 * TRACES * len(bodies)
    tiers = {dict(labels)["service_tier"] for name, labels in samples if name == "llm_requests_total"}
    assert tiers == {"default", "flex", "priority", "batch"}
    assert total_of(samples, "llm_units_total") > 0 and set(flags) == {""}
    legacy_flags = _legacy_flags(bodies)
    assert set(legacy_flags) == {"", "cache_unknown"}
    for key, (other_outcomes, other_samples, (other_ledger, other_flags), _) in results.items():
        assert other_outcomes == outcomes, key
        assert other_ledger == ledger, key
        told = key[0] == SCOPES[0]  # openai-v2's scope: no cached-token key, no cached-token count
        assert other_flags == (legacy_flags if told else flags), key
        assert total_of(other_samples, UNMETERED) == (legacy_flags.count("cache_unknown") if told else 0), key
        other_samples = {k: v for k, v in other_samples.items() if k[0] != UNMETERED}
        assert other_samples.keys() == samples.keys(), key
        for sample, value in samples.items():
            if sample[0].endswith("_sum"):
                assert math.isclose(other_samples[sample], value, rel_tol=1e-12), (key, sample)
            else:
                assert other_samples[sample] == value, (key, sample)
    taken = {scope: results[scope, True][3] for scope in SCOPES}
    assert len(set(taken.values())) == 1 and min(taken.values()) > TRACES, taken  # the fast path, every scope
