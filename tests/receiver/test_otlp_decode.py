"""Decoding OTLP bodies: decompression caps, protobuf and OTLP/JSON, the lean schema, attribute
decoding and span extraction."""

from __future__ import annotations

import gzip
import json
import time
import zlib

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from genai_meter.collector_processor.receiver import spans as spans_mod
from genai_meter.collector_processor.receiver.decode import (
    MEDIA_JSON,
    MEDIA_PROTOBUF,
    BadRequest,
    TooLarge,
    UnsupportedEncoding,
    decode,
    decompress,
    json_depth_ok,
    parse_json,
)
from genai_meter.collector_processor.receiver.spans import (
    REJECT_INVALID_ID,
    SpanExtractor,
    attributes,
    decode_key_value,
    marker_needles,
)
from tests.support.otlp import (
    json_request,
    json_span,
    llm_attributes,
    make_request,
    make_span,
    new_ids,
    otlp_json,
    plain_span,
)

# -- decompression ---------------------------------------------------------------------------

def test_gzip_and_deflate_round_trip() -> None:
    data = b"span" * 10_000
    assert decompress(gzip.compress(data), "gzip", len(data)) == data
    assert decompress(gzip.compress(data), "x-gzip", len(data)) == data
    assert decompress(zlib.compress(data), "deflate", len(data)) == data
    assert decompress(data, "", len(data)) == data
    assert decompress(data, "identity", len(data)) == data
    # several gzip members back to back are one body
    assert decompress(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 4) == b"abcd"


def test_limit_applies_after_decompression() -> None:
    data = b"\0" * 100_001
    with pytest.raises(TooLarge):
        decompress(gzip.compress(data), "gzip", 100_000)
    with pytest.raises(TooLarge):
        decompress(data, "", 100_000)


def test_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"\0" * (256 << 20), 9)  # 256 MiB inflated, ~250 KiB on the wire
    started = time.monotonic()
    with pytest.raises(TooLarge):
        decompress(bomb, "gzip", 1 << 20)
    assert time.monotonic() - started < 1.0  # never inflated in full


@pytest.mark.parametrize("body", [b"not gzip at all", gzip.compress(b"x" * 1000)[:-12]])
def test_corrupt_or_truncated_gzip_is_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        decompress(body, "gzip", 1 << 20)


def test_unknown_encoding() -> None:
    with pytest.raises(UnsupportedEncoding):
        decompress(b"x", "br", 10)


# -- protobuf and JSON ---------------------------------------------------------------------------

def test_truncated_and_garbage_protobuf_are_bad_requests() -> None:
    body = make_request([make_span(llm_attributes())]).SerializeToString()
    for bad in (body[:-7], b"\xff\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f"):
        with pytest.raises(BadRequest):
            decode(bad, MEDIA_PROTOBUF)
        with pytest.raises(BadRequest):
            decode(bad, MEDIA_PROTOBUF, full=True)


def test_empty_body_is_an_empty_request() -> None:
    decoded = decode(b"", MEDIA_PROTOBUF)
    assert len(decoded.lean.resource_spans) == 0
    assert len(decode(b"{}", MEDIA_JSON).lean.resource_spans) == 0


def test_json_depth_check() -> None:
    assert json_depth_ok(b'{"a": [{"b": "[[[[[[[[[["}]}', 3)
    assert json_depth_ok(b'{"a": "\\\\", "b": "\\"[[[[[["}', 1)  # escaped backslash, escaped quote
    assert json_depth_ok(b"[" * 64 + b"]" * 64)
    assert not json_depth_ok(b"[" * 65 + b"]" * 65)
    started = time.monotonic()
    assert not json_depth_ok(b"[" * 5_000_000 + b"]" * 5_000_000)
    assert time.monotonic() - started < 1.0
    with pytest.raises(BadRequest, match="deeper"):
        parse_json(b'{"resourceSpans": ' + b"[" * 200 + b"]" * 200 + b"}")


def test_json_is_read_like_protobuf() -> None:
    """Hex ids, int64 as strings, integer enums, unknown fields: as the OTLP/JSON spec writes them."""
    ids = new_ids()
    attrs = llm_attributes(customer="json-co", input_tokens=1234, output_tokens=56, cached=34)
    body = json_request([json_span(attrs, ids=ids)])
    body["resourceSpans"][0]["someFutureField"] = {"x": 1}
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["flags"] = 257
    decoded = decode(otlp_json(body), MEDIA_JSON, full=True)
    span = decoded.full.resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id, span.span_id) == ids
    assert span.kind == Span.SPAN_KIND_CLIENT
    found = SpanExtractor().extract(decoded.lean)
    (record,) = found.candidates
    assert record.attributes["gen_ai.usage.input_tokens"] == 1234
    assert record.attributes["customer.id"] == "json-co"
    assert (record.trace_id, record.span_id) == ids
    assert record.resource["service.name"] == "checkout"


def test_json_bad_hex_id_rejects_the_span_not_the_request() -> None:
    good = json_span(llm_attributes())
    bad = json_span(llm_attributes())
    bad["spanId"] = "not-hex!"
    found = SpanExtractor().extract(decode(otlp_json(json_request([good, bad])), MEDIA_JSON).lean)
    assert len(found.candidates) == 1
    assert found.rejected == {REJECT_INVALID_ID: 1}


@pytest.mark.parametrize("body", [b"[]", b'{"resourceSpans": "x"}', b"{", b'{"resourceSpans": [{"scopeSpans": '
                                  b'[{"spans": [{"startTimeUnixNano": "soon"}]}]}]}'])
def test_invalid_json_is_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        decode(body, MEDIA_JSON)


# -- attributes -------------------------------------------------------------------------------

VALUES = [
    "", "gpt-4o", "é" * 100, "x" * 5000, 0, 1, -1, 127, 128, 2**40, -(2**63), 2**63 - 1, 0.0, 0.7, -1e300,
    True, False, b"\x00\xff", ("stop",), ("a", 1, 2.5, True), (), {"k": "v", "n": 3},
    ((1, 2), ("x",)),
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:20] for v in VALUES])
def test_fast_attribute_decoding_matches_protobuf(value: object) -> None:
    from tests.support.otlp import any_value as to_any

    if isinstance(value, bytes):
        any_value = AnyValue(bytes_value=value)
    elif isinstance(value, dict):
        any_value = AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=to_any(v))
                                                               for k, v in value.items()]))
    else:
        any_value = to_any(value)
    raw = KeyValue(key="k" * 130, value=any_value).SerializeToString()  # a key past 127 bytes too
    assert decode_key_value(raw) == ("k" * 130, value)
    assert attributes([raw]) == {"k" * 130: value}


def test_empty_and_broken_attributes_are_left_out() -> None:
    empty = KeyValue(key="empty").SerializeToString()
    no_value = KeyValue(key="none", value=AnyValue()).SerializeToString()
    broken = b"\x0a\x05ab"  # key length past the end
    bad_utf8 = b"\x0a\x01k\x12\x03\x0a\x01\xff"
    good = KeyValue(key="ok", value=AnyValue(int_value=3)).SerializeToString()
    assert attributes([empty, no_value, broken, bad_utf8, good]) == {"ok": 3}


def test_marker_needles_cover_every_marker() -> None:
    from genai_meter.conventions import MARKER_KEYS

    needles = marker_needles(MARKER_KEYS)
    assert len(needles) <= 6
    for key in MARKER_KEYS:
        assert any(n in key.encode() for n in needles), key


# -- extraction -------------------------------------------------------------------------------

def test_extraction_counts_and_builds_records() -> None:
    ids = new_ids()
    parent = new_ids()[1]
    llm = make_span(llm_attributes(customer="c1", **{"gen_ai.response.finish_reasons": ["stop"]}), ids=ids,
                    trace_state="ot=th:8")
    llm.parent_span_id = parent
    llm.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR))
    llm.events.add(name="gen_ai.first_token", time_unix_nano=llm.start_time_unix_nano + 5)
    request = make_request([plain_span(), llm, plain_span()])
    zero_ids = make_span(llm_attributes(), ids=(bytes(16), bytes(8)))
    short_ids = make_span(llm_attributes(), ids=(b"\x01" * 8, b"\x01" * 8))
    request.resource_spans[0].scope_spans[0].spans.extend([zero_ids, short_ids])
    found = SpanExtractor().extract(decode(request.SerializeToString(), MEDIA_PROTOBUF).lean)
    assert found.received == 5
    assert found.not_candidate == 2
    assert found.rejected == {REJECT_INVALID_ID: 2}
    (record,) = found.candidates
    assert (record.trace_id, record.span_id, record.parent_span_id) == (ids[0], ids[1], parent)
    assert record.is_error
    assert record.trace_state == "ot=th:8"
    assert record.scope_name == "opentelemetry.instrumentation.openai_v2"
    assert record.events == (("gen_ai.first_token", llm.start_time_unix_nano + 5),)
    assert record.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert record.resource == {"service.name": "checkout", "deployment.environment.name": "prod"}
    assert record.end_ns - record.start_ns == 1_500_000_000


def test_prefilter_false_positive_is_still_not_a_candidate() -> None:
    # "ai." occurs in the value, no marker key: screened in, then rejected exactly
    span = make_span({"http.url": "https://api.openai.com/v1/chat", "llm.note": "x"})
    found = SpanExtractor().extract(decode(make_request([span]).SerializeToString(), MEDIA_PROTOBUF).lean)
    assert (found.received, found.not_candidate, found.candidates) == (1, 1, [])


def test_fast_path_for_bodies_without_genai_spans() -> None:
    body = make_request([plain_span() for _ in range(10)]).SerializeToString()
    extractor = SpanExtractor()
    assert not extractor.maybe_has_candidates(body)
    found = extractor.extract(decode(body, MEDIA_PROTOBUF).lean, skip_all=True)
    assert (found.received, found.not_candidate) == (10, 10)
    assert extractor.maybe_has_candidates(make_request([make_span(llm_attributes())]).SerializeToString())


def test_lean_and_full_messages_agree() -> None:
    request = make_request([make_span(llm_attributes(customer=f"c{i}", input_tokens=i)) for i in range(20)])
    decoded = decode(request.SerializeToString(), MEDIA_PROTOBUF, full=True)
    assert decoded.full == request
    records = SpanExtractor().extract(decoded.lean).candidates
    assert [r.attributes["customer.id"] for r in records] == [f"c{i}" for i in range(20)]
    assert [r.attributes["gen_ai.usage.input_tokens"] for r in records] == list(range(20))


def test_attribute_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spans_mod, "CACHE_MAX_ENTRIES", 100)
    monkeypatch.setattr(spans_mod, "_cache", {})
    raws = [KeyValue(key="customer.id", value=AnyValue(string_value=f"c{i}")).SerializeToString()
            for i in range(1000)]
    for raw in raws:
        assert attributes([raw])["customer.id"] == decode_key_value(raw)[1]
    assert len(spans_mod._cache) <= 100


def test_array_of_arrays_and_deep_values() -> None:
    nested = AnyValue(string_value="leaf")
    for _ in range(30):  # 60 message levels: within upb's limit of 100
        nested = AnyValue(array_value=ArrayValue(values=[nested]))
    raw = KeyValue(key="deep", value=nested).SerializeToString()
    key, value = decode_key_value(raw)
    for _ in range(30):
        (value,) = value
    assert value == "leaf"
    # an attribute nested past upb's recursion limit is dropped, not the span
    def length(n: int) -> bytes:
        out = b""
        while n >= 0x80:
            out += bytes([n & 0x7F | 0x80])
            n >>= 7
        return out + bytes([n])

    value_bytes = AnyValue(string_value="leaf").SerializeToString()
    for _ in range(200):
        array = b"\x0a" + length(len(value_bytes)) + value_bytes  # ArrayValue.values
        value_bytes = b"\x2a" + length(len(array)) + array  # AnyValue.array_value
    raw = b"\x0a\x06deeper\x12" + length(len(value_bytes)) + value_bytes
    assert attributes([raw]) == {}


def test_json_body_and_protobuf_body_extract_the_same() -> None:
    spans_json = [json_span(llm_attributes(customer=f"c{i}", input_tokens=100 + i)) for i in range(5)]
    from_json = SpanExtractor().extract(decode(json.dumps(json_request(spans_json)).encode(), MEDIA_JSON).lean)
    assert [r.attributes["gen_ai.usage.input_tokens"] for r in from_json.candidates] == [100 + i for i in range(5)]
