"""The speed tricks of the hot paths give exactly what the plain paths give (docs/performance.md).

Each fast path is compared with the slower one it replaces, or with the state it caches: the SDK
span read from its fields vs through its properties, the attribute cache's admission, the store's
label-combination cache, the shared unit-price dicts, and the ingestor's request lock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags, TraceState

import genai_meter.collector_processor.receiver.spans as spans_mod
from genai_meter import contract
from genai_meter.collector_processor.inprocess.processor import CostSpanProcessor, _public_span_record, span_record
from genai_meter.collector_processor.metering import build_meter
from genai_meter.collector_processor.receiver.decode import MEDIA_PROTOBUF, BadRequest, decode
from genai_meter.collector_processor.receiver.dedup import SeenSpans
from genai_meter.collector_processor.receiver.ingest import Ingestor
from genai_meter.collector_processor.receiver.spans import attributes, decode_key_value
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.pricing import PriceBook
from genai_meter.records import Cost, LLMCall, TokenCounts
from tests.support.otlp import gpt4o_cost, llm_attributes, make_request, make_span

# -- the in-process span record ------------------------------------------------------------------


class _Capture(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def _ended_spans() -> list[ReadableSpan]:
    capture = _Capture()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "deployment.environment.name": "e"}))
    provider.add_span_processor(SimpleSpanProcessor(capture))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    with tracer.start_as_current_span("agent") as parent:
        child = tracer.start_span("chat gpt-4o", attributes=llm_attributes())
        child.add_event("gen_ai.first_token", timestamp=child.start_time + 5)
        child.set_status(Status(StatusCode.ERROR, "boom"))
        child.end()
        parent.set_attribute("gen_ai.operation.name", "invoke_agent")
    plain = tracer.start_span("GET /x", attributes={"http.request.method": "GET"})
    plain.end()
    return capture.spans


def test_sdk_span_record_reads_the_same_as_the_public_properties() -> None:
    spans = _ended_spans()
    assert [type(s) for s in spans] == [ReadableSpan] * 3
    for span in spans:
        assert span_record(span) == _public_span_record(span)
    child = span_record(spans[0])
    assert child.is_error and child.parent_span_id and child.events == (("gen_ai.first_token",
                                                                        spans[0].start_time + 5),)


def test_trace_state_and_other_readable_span_types() -> None:
    context = SpanContext(trace_id=5, span_id=7, is_remote=False, trace_flags=TraceFlags(1),
                          trace_state=TraceState([("ot", "th:8")]))
    sdk = ReadableSpan("chat", context=context, attributes={"gen_ai.operation.name": "chat"},
                       start_time=1, end_time=2)
    assert span_record(sdk).trace_state == "ot=th:8" == _public_span_record(sdk).trace_state

    class Custom(ReadableSpan):  # any other implementation goes through the public properties
        @property
        def attributes(self):
            return {"gen_ai.operation.name": "embeddings"}

    custom = Custom("embed", context=context, start_time=1, end_time=2)
    assert span_record(custom).attributes == {"gen_ai.operation.name": "embeddings"}


def test_processor_prefilter_sees_the_attributes_of_sdk_spans() -> None:
    processor = CostSpanProcessor(Config())
    for span in _ended_spans():
        processor.on_end(span)
    assert processor.metrics.get("genai_meter_spans_counted_total") == 1
    assert processor.metrics.get("genai_meter_spans_skipped_total", reason=contract.SKIP_AGGREGATE) == 1


# -- the attribute cache ---------------------------------------------------------------------------


def test_attribute_cache_admits_values_on_their_second_sight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spans_mod, "_cache", {})
    monkeypatch.setattr(spans_mod, "_seen_once", set())
    raw = KeyValue(key="gen_ai.response.id", value=AnyValue(string_value="chatcmpl-1")).SerializeToString()
    assert attributes([raw]) == {"gen_ai.response.id": "chatcmpl-1"}
    assert raw not in spans_mod._cache
    assert attributes([raw]) == {"gen_ai.response.id": "chatcmpl-1"}
    assert spans_mod._cache[raw] == decode_key_value(raw)
    assert attributes([raw]) == {"gen_ai.response.id": "chatcmpl-1"}


def test_attribute_admission_filter_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spans_mod, "SEEN_ONCE_MAX_ENTRIES", 50)
    monkeypatch.setattr(spans_mod, "_seen_once", set())
    for i in range(500):
        raw = KeyValue(key="id", value=AnyValue(string_value=f"unique-{i}")).SerializeToString()
        assert attributes([raw]) == {"id": f"unique-{i}"}
    assert len(spans_mod._seen_once) <= 50


# -- the store's label-combination cache -----------------------------------------------------------

END_NS = 1_795_449_600 * 10**9
COST = Cost(by_type={"input": Decimal("0.001")}, price_source="t", price_version="1", price_entry="e",
            unit_prices={"input": Decimal("1")})


def _call(**kw: object) -> LLMCall:
    fields: dict = dict(service="s", environment="e", provider="openai", model="gpt-4o", operation="chat",
                        status="ok", error_type="", duration_s=1.0, ttft_s=None, tokens=TokenCounts(input=1000),
                        end_ns=END_NS, dimensions={"customer": "acme"})
    fields.update(kw)
    return LLMCall(**fields)


def _store(max_values: int = 2) -> UsageMetrics:
    return UsageMetrics(Config(dimensions={"customer": {"attributes": ["customer.id"], "max_values": max_values}}))


def test_label_combinations_are_cached_once_resolved() -> None:
    store = _store()
    store.record_call(_call(), COST)
    store.record_call(_call(), COST)
    assert list(store._combos.values())[0][-1] == ("s", "e", "openai", "gpt-4o", "chat", "default", "acme")
    assert len(store._combos) == 1
    assert store.get("llm_requests_total", service_name="s", environment="e", provider="openai", model="gpt-4o",
                     operation="chat", service_tier="default", customer="acme", status="ok") == 2


def test_overflowing_combinations_are_counted_every_time_and_not_cached() -> None:
    store = _store(max_values=1)
    store.record_call(_call(), COST)
    for _ in range(3):
        store.record_call(_call(dimensions={"customer": "other"}), COST)
    assert len(store._combos) == 1
    assert store.get(contract.SELF_LABEL_OVERFLOW, dimension="customer") == 3
    assert store.get("llm_requests_total", service_name="s", environment="e", provider="openai", model="gpt-4o",
                     operation="chat", service_tier="default", customer=contract.OVERFLOW, status="ok") == 3


def test_odd_raw_values_are_resolved_exactly_without_the_cache() -> None:
    store = _store(max_values=10)
    store.record_call(_call(dimensions={"customer": 1}), COST)
    store.record_call(_call(dimensions={"customer": True}), COST)  # equal to 1 as a dict key
    store.record_call(_call(dimensions={"customer": ["a"]}), COST)  # unhashable
    store.record_call(_call(dimensions={"customer": "x" * 500}), COST)  # longer than the label limit
    assert not store._combos
    keys = {k[6] for k in store.family("llm_requests_total").keys}
    assert keys == {"1", "True", "['a']", "x" * 128}


def test_a_price_change_still_sets_the_gauge() -> None:
    store = _store()
    for price in ("1", "2", "1"):
        cost = Cost(by_type={"input": Decimal("0.001")}, price_source="t", price_version="1", price_entry="e",
                    unit_prices={"input": Decimal(price)})
        store.record_call(_call(), cost)
        assert store.get_decimal("llm_price_usd_per_million_tokens", provider="openai", model="gpt-4o",
                                 token_type="input") == Decimal(price)


# -- pricing -------------------------------------------------------------------------------------


def test_unit_price_dicts_are_shared_per_set_of_classes() -> None:
    book = PriceBook()
    at = datetime(2026, 11, 1, tzinfo=UTC)
    a = book.price("openai", "gpt-4o", TokenCounts(input=10, output=5), at)
    b = book.price("openai", "gpt-4o", TokenCounts(input=99, output=1), at)
    c = book.price("openai", "gpt-4o", TokenCounts(input=99, cache_read=1, output=1), at)
    assert a is not None and b is not None and c is not None
    assert a.unit_prices is b.unit_prices
    assert a.unit_prices == {"input": Decimal("2.5"), "output": Decimal("10")}
    assert c.unit_prices == {"input": Decimal("2.5"), "cache_read": Decimal("1.25"), "output": Decimal("10")}
    one_hour = book.price("anthropic", "claude-sonnet-4-5", TokenCounts(cache_write=1000), at, cache_write_1h=True)
    five_min = book.price("anthropic", "claude-sonnet-4-5", TokenCounts(cache_write=1000), at)
    assert one_hour is not None and five_min is not None
    assert one_hour.unit_prices["cache_write"] == Decimal("6")
    assert five_min.unit_prices["cache_write"] == Decimal("3.75")
    assert one_hour.by_type["cache_write"] == Decimal("0.006") and five_min.by_type["cache_write"] == Decimal("0.00375")


# -- the ingestor ------------------------------------------------------------------------------


def _ingestor() -> tuple[Ingestor, UsageMetrics]:
    config = Config()
    metrics = UsageMetrics(config)
    return Ingestor(build_meter(config, [metrics]), metrics, SeenSpans(600, 100_000)), metrics


def test_decode_and_export_counts_like_export_and_counts_nothing_when_undecodable() -> None:
    ingestor, metrics = _ingestor()
    body = make_request([make_span(llm_attributes(input_tokens=1000, output_tokens=200))]).SerializeToString()
    outcome = ingestor.decode_and_export(lambda: decode(body, MEDIA_PROTOBUF))
    assert outcome.counted == 1
    with pytest.raises(BadRequest):
        ingestor.decode_and_export(lambda: decode(b"\xff\xff\xff", MEDIA_PROTOBUF))
    assert metrics.get("genai_meter_spans_received_total") == 1


def test_requests_from_many_threads_are_counted_exactly() -> None:
    ingestor, metrics = _ingestor()
    bodies = [make_request([make_span(llm_attributes(input_tokens=100 + i, output_tokens=10)) for i in range(20)])
              .SerializeToString() for _ in range(12)]

    def send(mine: list[bytes]) -> None:
        for body in mine:
            ingestor.decode_and_export(lambda body=body: decode(body, MEDIA_PROTOBUF))

    threads = [threading.Thread(target=send, args=(bodies[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert metrics.get("genai_meter_spans_counted_total") == 240
    expected = sum((gpt4o_cost(100 + i, 10) for i in range(20)), Decimal(0)) * 12
    assert sum(metrics.family("llm_cost_usd_total").values, Decimal(0)) == expected
