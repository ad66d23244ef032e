"""The C accelerator of span extraction (`SpanExtractor.extract_data`, `_extract.c`) gives exactly what
the pure path (`extract(parse_lean(data))`) gives: on the span fixtures, the benchmark bodies, random
OTLP requests built with the real protobuf classes (plus raw attribute bytes and odd field layouts),
and random mutations of valid bodies (which it must survive whatever upb says of them), with and without
a ledger's retention bound on end times (the same spans refused for the same reasons). It is built in
this checkout (CI exercises it), switched off by GENAI_METER_ACCELERATOR=off, and leaks nothing.
"""

from __future__ import annotations

import gc
import math
import os
import random
import struct
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from benchmarks.mixed_bodies import mixed_body
from benchmarks.otlp_bodies import Stamper, llm_span_body, template_body
from genai_meter.collector_processor.receiver import spans as spans_mod
from genai_meter.collector_processor.receiver.decode import BadRequest, parse_lean
from genai_meter.collector_processor.receiver.spans import Extracted, SpanExtractor
from genai_meter.conventions import MARKER_KEYS
from genai_meter.conventions.times import NS_PER_DAY, EndTimes
from genai_meter.records import SpanRecord
from tests.support.otlp import REPO, key_values, new_ids
from tests.support.record_spans import fixture_names, read_fixture

NOW = time.time_ns()  # one clock reading for both paths (an end time at the edge of the window stays put)
SKEW = 600 * 10**9
EXTRACTOR = SpanExtractor(end_times=EndTimes(SKEW))  # no ledger: no lower bound (the fixtures stay in)
RETAINING = SpanExtractor(end_times=EndTimes(SKEW, 400 * NS_PER_DAY))  # a ledger's retention: too_old too
BOTH = (EXTRACTOR, RETAINING)
OLDEST, NEWEST = RETAINING.end_times.bounds(NOW)
# end times at and around every bound, in the window, and anything a fixed64 holds
END_TIMES = st.one_of(st.sampled_from([0, 1, OLDEST - 1, OLDEST, NOW, NEWEST, NEWEST + 1, 2**63 - 1, 2**63,
                                       2**64 - 1]),
                      st.integers(OLDEST - 10**12, NEWEST + 10**12), st.integers(0, 2**64 - 1))
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- comparing the two paths ----------------------------------------------------------------------


def same_value(a: Any, b: Any) -> bool:
    """Equal with the same types throughout (True is not 1), dict key order included, NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return bool(a == b)


def assert_same(fast: Extracted | None, pure: Extracted) -> None:
    """`fast` (the C path) is `pure` field by field, and shares objects as the pure path does."""
    assert fast is not None, "the accelerator gave up on a body it should handle"
    assert (fast.received, fast.not_candidate, fast.rejected) == (pure.received, pure.not_candidate, pure.rejected)
    assert len(fast.candidates) == len(pure.candidates)
    for got, want in zip(fast.candidates, pure.candidates):
        assert type(got) is SpanRecord
        for name in SpanRecord.__slots__:
            assert same_value(getattr(got, name), getattr(want, name)), (name, getattr(got, name), getattr(want, name))
        assert all(sys.intern(key) is key for key in got.attributes), "attribute keys are interned"
    for i, a in enumerate(fast.candidates):  # one resource dict per ResourceSpans, one scope name per ScopeSpans
        for j, b in enumerate(fast.candidates[: i + 1]):
            assert (a.resource is b.resource) == (pure.candidates[i].resource is pure.candidates[j].resource)
            if pure.candidates[i].scope_name is pure.candidates[j].scope_name:
                assert a.scope_name is b.scope_name


def both_paths(data: bytes, extractors: tuple[SpanExtractor, ...] = (EXTRACTOR,)) -> None:
    """For a body upb accepts, both paths agree; for one it refuses, the C scan survives."""
    try:
        lean = parse_lean(data)
    except BadRequest:
        for extractor in extractors:
            found = extractor.extract_data(data, NOW)
            assert found is None or isinstance(found, Extracted)
        return
    for extractor in extractors:
        assert_same(extractor.extract_data(data, NOW), extractor.extract(lean, now_ns=NOW))


# -- building bodies by hand (the real classes for messages, bytes where they cannot go) ------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ld(field: int, payload: bytes) -> bytes:
    """One length-delimited field."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def request(resources: list[tuple[list[bytes], list[tuple[str, list[bytes]]]]]) -> bytes:
    """An ExportTraceServiceRequest of (resource attributes, [(scope name, spans)]), all as raw bytes."""
    body = b""
    for attrs, scopes in resources:
        rs = ld(1, b"".join(ld(1, a) for a in attrs))
        for scope, spans in scopes:
            rs += ld(2, ld(1, ld(1, scope.encode())) + b"".join(ld(2, s) for s in spans))
        body += ld(1, rs)
    return body


def fixture_span(data: dict[str, Any]) -> bytes:
    trace_id, span_id = new_ids()
    span = Span(name=data["name"], start_time_unix_nano=int(data.get("start_ns", 0)),
                end_time_unix_nano=int(data.get("end_ns", 0)),
                trace_id=bytes.fromhex(data["trace_id"]) if data.get("trace_id") else trace_id,
                span_id=bytes.fromhex(data["span_id"]) if data.get("span_id") else span_id,
                parent_span_id=bytes.fromhex(data.get("parent_span_id") or ""),
                attributes=key_values(data.get("attributes", {})),
                status=Status(code={"OK": 1, "ERROR": 2}.get(data.get("status", ""), 0)),
                events=[Span.Event(name=e["name"], time_unix_nano=int(e["time_ns"])) for e in data.get("events", [])])
    return span.SerializeToString()


FIXTURES = fixture_names()


def fixture_body(names: list[str]) -> bytes:
    datas = [read_fixture(n) for n in names]
    resources = []
    for data in datas:
        resource = [kv.SerializeToString() for kv in key_values(data.get("resource", {}))]
        resources.append((resource, [(data.get("scope_name", ""), [fixture_span(data)])]))
    return request(resources)


# -- the tests ------------------------------------------------------------------------------------


def test_the_accelerator_is_built_and_on() -> None:
    """Fails (not skips) when the extension is missing: `pip install -e .` builds it in place."""
    from genai_meter.collector_processor.receiver import _extract  # noqa: F401

    assert os.environ.get(spans_mod.ACCELERATOR_ENV, "") != "off", "the test run must not switch it off"
    assert spans_mod.ACCELERATED and EXTRACTOR.accelerated


@pytest.mark.parametrize("name", FIXTURES)
def test_every_span_fixture_gives_the_same_result(name: str) -> None:
    both_paths(fixture_body([name]))


def test_all_fixtures_in_one_request_share_resources_per_resource_spans() -> None:
    data = fixture_body(FIXTURES)
    both_paths(data)
    found = EXTRACTOR.extract_data(data, NOW)
    assert found is not None and len(found.candidates) > 40


@pytest.mark.parametrize("share", [1.0, 0.1, 0.0])
def test_the_benchmark_bodies_give_the_same_result(share: float) -> None:
    for body in Stamper(template_body(share, spans=128), first=7).bodies(2):
        both_paths(body)
    both_paths(llm_span_body("acme"))


def test_the_mixed_traffic_body_gives_the_same_result() -> None:
    """Several resources and scopes, traces of four spans, legacy, OpenLLMetry and OpenInference keys."""
    for body in Stamper(mixed_body(spans=256), first=3).bodies(2):
        both_paths(body)


def test_many_attributes_a_reserved_key_and_an_overlong_int() -> None:
    llm = KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")).SerializeToString()
    many = [KeyValue(key=f"k{i}", value=AnyValue(int_value=i)).SerializeToString() for i in range(80)]
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="s").SerializeToString()
    both_paths(request([([], [("sc", [span + b"".join(ld(9, a) for a in [*many, llm]) + ld(9, many[3])])])]))
    # the key spans.attributes uses for dropped attributes, and a 10-byte int varint with bits past the
    # 64th (spans._varint keeps them): left to the pure path
    reserved = ld(1, b"\0dropped") + ld(2, b"\x18\x01")
    overlong = ld(1, b"k") + ld(2, b"\x18" + b"\xff" * 9 + b"\x7f")
    for odd in (reserved, overlong):
        data = request([([], [("sc", [span + ld(9, llm) + ld(9, odd)])])])
        parse_lean(data)
        assert EXTRACTOR.extract_data(data) is None


MARKER = KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")).SerializeToString()
SPAN = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="chat").SerializeToString()


def _kv(key: str, **value: Any) -> bytes:
    return KeyValue(key=key, value=AnyValue(**value)).SerializeToString()


ATTRIBUTE_CASES: dict[str, list[bytes]] = {
    "ints": [_kv(f"i{n}", int_value=n) for n in (0, 1, -1, -5, 127, 128, 2**63 - 1, -(2**63))],
    "uint64 wraps to int64": [ld(1, b"u") + ld(2, b"\x18" + varint(2**64 - 2))],
    "non-minimal varints": [ld(1, b"v") + ld(2, b"\x18\x85\x80\x00"), b"\x0a\x81\x00" + b"w" + ld(2, b"\x10\x81\x00")],
    "bools": [_kv("t", bool_value=True), _kv("f", bool_value=False), ld(1, b"b7") + ld(2, b"\x10\x07"),
              ld(1, b"b0") + ld(2, b"\x10" + b"\x80" * 9 + b"\x01"),  # only the 64th bit set: True
              ld(1, b"b2") + ld(2, b"\x10" + b"\x80" * 9 + b"\x02")],  # past the 64th (spans._varint keeps it)
    "doubles": [_kv(f"d{i}", double_value=x) for i, x in enumerate((0.0, -0.0, 1.5, math.inf, -math.inf, math.nan))],
    "strings": [_kv("s", string_value=""), _kv("é", string_value="ünï 🙂"), _kv("long", string_value="x" * 300)],
    "invalid UTF-8": [ld(1, b"k\xff") + ld(2, ld(1, b"v")), ld(1, b"k") + ld(2, ld(1, b"\xed\xa0\x80"))],
    "odd layouts": [ld(2, ld(1, b"v")) + ld(1, b"vk"), ld(1, b"a") + ld(1, b"kk") + ld(2, ld(1, b"v")),
                    ld(1, b"kv") + ld(2, ld(1, b"a") + b"\x18\x01"), ld(1, b"x") + ld(2, b"\x21" + bytes(7))],
    "empty and broken": [_kv("e"), KeyValue(key="n").SerializeToString(), b"", b"\x0a", b"\x0a\x05ab", b"\x12\x00"],
    "a key again": [_kv("k", string_value="1"), _kv("z", int_value=1), _kv("k"), _kv("k", int_value=2), _kv("z")],
    "other kinds": [_kv("by", bytes_value=b"\x00\x01"),
                    _kv("ar", array_value=ArrayValue(values=[AnyValue(int_value=-1), AnyValue()])),
                    _kv("kl", kvlist_value=KeyValueList(values=[KeyValue(key="a", value=AnyValue(bool_value=True))]))],
}


@pytest.mark.parametrize("case", sorted(ATTRIBUTE_CASES))
def test_attribute_encodings_give_the_same_values(case: str) -> None:
    raws = ATTRIBUTE_CASES[case]
    both_paths(request([(raws, [("sc", [SPAN + b"".join(ld(9, raw) for raw in [*raws, MARKER, *raws])])])]))


def _status(*codes: int | None) -> bytes:
    return b"".join(ld(15, b"" if c is None else b"\x18" + varint(c % 2**64)) for c in codes)


@pytest.mark.parametrize("status", [(), (2,), (1,), (2 + 2**32,), (-1,), (2, None), (2, 0), (0, 2), (None, 2)])
def test_status_codes_merge_as_upb_merges_them(status: tuple[int | None, ...]) -> None:
    both_paths(request([([], [("sc", [SPAN + ld(9, MARKER) + _status(*status)])])]))


def _ended(end_ns: int, n: int, start_ns: int = 0) -> bytes:
    """A candidate span ending at `end_ns` (span id `n`)."""
    return (Span(trace_id=b"\x01" * 16, span_id=bytes([n + 1]) * 8, name="e", start_time_unix_nano=start_ns,
                 end_time_unix_nano=end_ns).SerializeToString() + ld(9, MARKER))


EDGES = {  # end time -> the reason it is refused with a ledger's retention ("" = a candidate)
    OLDEST - 1: "too_old", OLDEST: "", NOW: "", NEWEST: "", NEWEST + 1: "end_time_in_future",
    2**63 - 1: "end_time_in_future", 2**63: "end_time_out_of_range", 2**64 - 1: "end_time_out_of_range",
    0: "too_old",
}


def test_end_times_are_refused_at_the_same_edges_with_the_same_reasons() -> None:
    """Both paths refuse a candidate whose end time is no plausible instant: 2^63 ns or later, past the clock-skew
    allowance, or (with a ledger) older than its retention; the bounds are inclusive."""
    ends = list(EDGES)
    data = request([([], [("sc", [_ended(end, n) for n, end in enumerate(ends)])])])
    both_paths(data, BOTH)
    found = RETAINING.extract_data(data, NOW)
    assert found is not None and found.received == len(ends)
    assert [c.end_ns for c in found.candidates] == [OLDEST, NOW, NEWEST]
    assert found.rejected == {"too_old": 2, "end_time_in_future": 2, "end_time_out_of_range": 2}
    opened = EXTRACTOR.extract_data(data, NOW)  # no ledger: nothing is too old
    assert opened is not None and [c.end_ns for c in opened.candidates] == [OLDEST - 1, OLDEST, NOW, NEWEST, 0]
    assert opened.rejected == {"end_time_in_future": 2, "end_time_out_of_range": 2}
    pure = RETAINING.extract(parse_lean(data), now_ns=NOW)
    assert pure.rejected == found.rejected and pure.rejected_total == 6


def test_an_invalid_id_is_the_reason_before_the_end_time() -> None:
    span = Span(trace_id=bytes(16), span_id=b"\x02" * 8, name="e", end_time_unix_nano=2**64 - 1).SerializeToString()
    data = request([([], [("sc", [span + ld(9, MARKER), _ended(2**63, 3), _ended(NOW, 4, start_ns=2**64 - 1)])])])
    both_paths(data, BOTH)
    found = EXTRACTOR.extract_data(data, NOW)
    assert found is not None and found.rejected == {"invalid_id": 1, "end_time_out_of_range": 1}
    assert [c.start_ns for c in found.candidates] == [2**64 - 1]  # the start is read as it is (the meter judges it)


def test_repeated_resources_scopes_and_fields_merge_as_upb_merges_them() -> None:
    span = SPAN + ld(5, b"renamed") + ld(1, b"\x03" * 16) + ld(9, MARKER) + b"\x39" + bytes(8) + b"\x39" + b"\x07" * 8
    scopes = ld(1, ld(1, b"first")) + ld(2, span) + ld(1, ld(1, b"second")) + ld(1, b"") + ld(2, span)
    rs = ld(2, scopes) + ld(1, ld(1, _kv("r1", int_value=1))) + ld(2, ld(2, span)) + ld(1, ld(1, _kv("r2", int_value=2)))
    both_paths(ld(1, rs) + ld(1, rs) + b"\x10\x01")  # two ResourceSpans and an unknown top-level field
    found = EXTRACTOR.extract_data(ld(1, rs))
    assert found is not None and [c.scope_name for c in found.candidates] == ["second", "second", ""]
    assert list(found.candidates[0].resource) == ["r1", "r2"]


def test_a_markerless_dot_or_a_raising_decoder_is_handled() -> None:
    assert SpanExtractor(markers=["nodot"]).extract_data(template_body(1.0, spans=4)) is None
    from genai_meter.collector_processor.receiver._extract import Scanner

    def boom(raw: bytes) -> None:
        raise KeyError("boom")

    scanner = Scanner(frozenset(MARKER_KEYS), EXTRACTOR.needles, SpanRecord, spans_mod._RECORD_FIELDS, boom)
    array = KeyValue(key="gen_ai.operation.name", value=AnyValue(array_value=ArrayValue(values=[
        AnyValue(string_value=f"unique-{os.getpid()}-{random.random()}")]))).SerializeToString()
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="s").SerializeToString()
    with pytest.raises(KeyError):  # an array goes through the (here raising) Python decoding
        scanner.scan(request([([], [("sc", [span + ld(9, array)])])]), 0, 2**63 - 1)
    for bounds in ((-1, 5), (0, -1), (0, 2**63)):  # bounds outside 0..2^63 - 1
        with pytest.raises((ValueError, OverflowError)):
            scanner.scan(b"", *bounds)
    with pytest.raises(TypeError):
        scanner.scan(b"")  # type: ignore[call-arg]
    with pytest.raises((TypeError, AttributeError)):  # the record type's fields must be slots
        Scanner(frozenset(MARKER_KEYS), (), dict, spans_mod._RECORD_FIELDS, boom)


def test_switched_off_by_the_environment() -> None:
    code = ("from genai_meter.collector_processor.receiver import spans\n"
            "from benchmarks.otlp_bodies import template_body\n"
            "assert not spans.ACCELERATED\n"
            "assert spans.SpanExtractor().extract_data(template_body(1.0, spans=4)) is None\n"
            "print('off')\n")
    env = {**os.environ, "GENAI_METER_ACCELERATOR": "off"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stdout.strip()) == (0, "off"), out.stderr


def test_no_reference_or_memory_leak() -> None:
    """Every path (candidates, rejected ids, the Python decoding, a give-up, an exception) many times:
    allocated blocks and the record type's references stay flat."""
    from genai_meter.collector_processor.receiver._extract import Scanner

    uncached = [_kv("kl", kvlist_value=KeyValueList(values=[KeyValue(key="a", value=AnyValue(int_value=1))])),
                _kv("long", array_value=ArrayValue(values=[AnyValue(string_value="x" * 200)]))]  # always through Python
    bodies = [template_body(1.0, spans=32), template_body(0.1, spans=32), fixture_body(FIXTURES[:20]),
              request([([], [("s", [SPAN + b"".join(ld(9, a) for a in [MARKER, *uncached])])])]),
              request([([], [("s", [Span(name="x").SerializeToString() + ld(9, MARKER)])])]),  # invalid ids
              request([([], [("s", [SPAN + ld(9, MARKER) + ld(9, ld(1, b"\0dropped") + ld(2, b"\x18\x01"))])])]),
              b"\x0a\x05\x12\x03", b""]
    raising = Scanner(frozenset(MARKER_KEYS), EXTRACTOR.needles, SpanRecord, spans_mod._RECORD_FIELDS,
                      lambda raw: 1 / 0)

    def rounds(n: int) -> None:
        for _ in range(n):
            for body in bodies:
                EXTRACTOR.extract_data(body)
                try:
                    raising.scan(body, 0, NOW)
                except ZeroDivisionError:
                    pass

    assert EXTRACTOR.extract_data(bodies[5]) is None and EXTRACTOR.extract_data(bodies[6]) is None  # give-ups
    rounds(50)  # caches filled
    gc.collect()  # earlier garbage would be freed during the rounds and hide a leak
    refs = sys.getrefcount(SpanRecord)
    blocks = sys.getallocatedblocks()
    rounds(500)
    gc.collect()
    assert sys.getrefcount(SpanRecord) == refs
    assert sys.getallocatedblocks() - blocks < 200  # one object leaked per round on any path: >= 500 blocks


def test_threads_sharing_the_caches_get_the_same_results() -> None:
    """The caches are shared and the Python decoding lets other threads run: results stay exact."""
    arrays = [_kv(f"gen_ai.a{i}", array_value=ArrayValue(values=[AnyValue(string_value=f"v{i}" * (i % 40))]))
              for i in range(300)]  # more odd attributes than cache slots: entries replaced under the threads
    spans = [SPAN + ld(9, MARKER) + b"".join(ld(9, a) for a in arrays[i::7]) for i in range(7)]
    bodies = [request([([_kv("service.name", string_value=f"svc{i}")], [(f"sc{i}", spans)])]) for i in range(6)]
    bodies += [template_body(1.0, spans=64, seed=s) for s in range(3)]
    expected = [EXTRACTOR.extract(parse_lean(b), now_ns=NOW) for b in bodies]
    failures: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(150):
            i = rng.randrange(len(bodies))
            try:
                assert_same(EXTRACTOR.extract_data(bodies[i], NOW), expected[i])
            except AssertionError as exc:
                failures.append(f"body {i}: {exc}")

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # hand the GIL over as often as possible
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        sys.setswitchinterval(switch)
    assert failures == [] and not any(t.is_alive() for t in threads)


# -- random requests -------------------------------------------------------------------------------

KEYS = sorted(MARKER_KEYS)[:8] + ["k", "customer.id", "gen_ai.x", "llm.y", "http.method", "é.ü", ""]
INT64 = st.sampled_from([0, 1, -1, -(2**63), 2**63 - 1, 300]) | st.integers(-(2**63), 2**63 - 1)
SCALARS = st.one_of(st.text(max_size=8).map(lambda s: AnyValue(string_value=s)),
                    INT64.map(lambda i: AnyValue(int_value=i)),
                    st.floats(allow_nan=True).map(lambda f: AnyValue(double_value=f)),
                    st.booleans().map(lambda b: AnyValue(bool_value=b)),
                    st.binary(max_size=6).map(lambda b: AnyValue(bytes_value=b)),
                    st.just(AnyValue()))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
    st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=3).map(
        lambda kvs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs])))),
    max_leaves=6)
BAD_UTF8 = st.sampled_from([b"\xff", b"a\xc3", b"\xed\xa0\x80", b"gen_ai.operation.name\xff"])
RAW_ATTRIBUTES = st.one_of(
    st.builds(lambda k, v: KeyValue(key=k, value=v).SerializeToString(), st.sampled_from(KEYS), VALUES),
    st.builds(lambda k: KeyValue(key=k).SerializeToString(), st.sampled_from(KEYS)),  # no value
    st.builds(lambda k, v: ld(1, k) + ld(2, ld(1, v)), st.sampled_from(KEYS).map(str.encode) | BAD_UTF8,
              BAD_UTF8 | st.just(b"ok")),  # invalid UTF-8 key or value
    st.builds(lambda k, v: ld(2, v.SerializeToString()) + ld(1, k.encode()), st.sampled_from(KEYS), SCALARS),
    st.builds(lambda k, v: ld(1, b"x") + ld(1, k.encode()) + ld(2, v.SerializeToString()), st.sampled_from(KEYS),
              SCALARS),  # the key twice
    st.builds(lambda k, n: ld(1, k.encode()) + ld(2, b"\x18" + varint(n)), st.sampled_from(KEYS),
              st.sampled_from([2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1)),  # ints through uint64
    st.binary(max_size=12))  # junk
VALID_IDS = (b"\x01" * 16, b"\x02" * 8)
IDS = st.sampled_from([VALID_IDS, VALID_IDS, VALID_IDS, VALID_IDS, (bytes(16), b"\x02" * 8), (b"\x01" * 16, bytes(8)),
                       (b"\x01" * 15, b"\x02" * 8), (b"", b""), (b"\x01" * 16, b"\x02" * 9)])


@st.composite
def random_span(draw: st.DrawFn) -> bytes:
    trace_id, span_id = draw(IDS)
    chunks = [ld(1, trace_id), ld(2, span_id), ld(5, draw(st.text(max_size=6)).encode()),
              b"\x39" + struct.pack("<Q", draw(END_TIMES)), b"\x41" + struct.pack("<Q", draw(END_TIMES))]
    chunks += [ld(9, raw) for raw in draw(st.lists(RAW_ATTRIBUTES, max_size=8))]
    chunks += [ld(11, Span.Event(name=n, time_unix_nano=t).SerializeToString())
               for n, t in draw(st.lists(st.tuples(st.text(max_size=4), st.integers(0, 2**64 - 1)), max_size=2))]
    codes = st.sampled_from([2, 2, 0, 1, 2 + 2**32, -1]) | st.integers(-3, 2**33)  # status.code is an int32
    chunks += [ld(15, b"\x18" + varint(c % 2**64)) for c in draw(st.lists(codes, max_size=2))]
    if draw(st.booleans()):
        chunks += [ld(3, draw(st.text(max_size=5)).encode()), ld(4, draw(st.binary(max_size=8))),
                   b"\x30\x03", ld(13, b"unknown"), b"\x08\x05"]  # kind, an unknown field, trace_id as a varint
    return b"".join(draw(st.permutations(chunks)))


RANDOM_REQUESTS = st.lists(st.tuples(st.lists(RAW_ATTRIBUTES, max_size=3),
                                     st.lists(st.tuples(st.text(max_size=5), st.lists(random_span(), max_size=3)),
                                              min_size=1, max_size=2)),
                           min_size=1, max_size=3).map(request)


@FUZZ
@given(RANDOM_REQUESTS, st.integers(0, 3))
def test_random_requests_give_the_same_result(data: bytes, extra: int) -> None:
    both_paths(data, BOTH)
    if extra == 1:  # a second `resource` and `scope` later in the message: they merge
        both_paths(data.replace(b"", b"", 0) + ld(1, ld(1, ld(1, KeyValue(key="late", value=AnyValue(int_value=1))
                                                              .SerializeToString()))), BOTH)


SEEDS = [template_body(1.0, spans=3), template_body(0.5, spans=4), fixture_body(FIXTURES[:3]),
         llm_span_body("fuzz")]


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
       st.integers(0, 10**6), st.booleans())
def test_mutated_bodies_never_crash_and_agree_when_upb_accepts(seed: bytes, edits: list[tuple[int, int]], cut: int,
                                                               truncate: bool) -> None:
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    if truncate:
        data = data[: cut % (len(data) + 1)]
    both_paths(bytes(data), BOTH)


def test_random_junk_never_crashes() -> None:
    rng = random.Random(13)
    for _ in range(3000):
        both_paths(rng.randbytes(rng.randrange(64)))
