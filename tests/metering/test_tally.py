"""The C `_tally.run` gives exactly what `Tally.run_pure` (the reference) gives: the same return values and
the same groups, group index, taken tuples and nested-call memory, on the benchmark bodies, on every span
fixture and on generated runs (odd token counts, events, errors, nesting, sampling, resources changing,
prices at the integer limits, durations and times to first token at and past a day); on hostile spans
(str subclasses whose __eq__, __hash__ or __bool__ change the span while it is read) it is memory-safe and
still agrees; and it keeps no references."""

from __future__ import annotations

import dataclasses
import gc
import os
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.mixed_bodies import mixed_body
from benchmarks.otlp_bodies import Stamper, template_body
from genai_meter.collector_processor.metering import build_meter, tally
from genai_meter.collector_processor.metering.meter import Meter
from genai_meter.collector_processor.receiver.decode import parse_lean
from genai_meter.collector_processor.receiver.spans import SpanExtractor
from genai_meter.config import Config
from genai_meter.conventions.times import MAX_CALL_NS
from genai_meter.exporters import UsageMetrics
from genai_meter.records import SpanRecord
from tests.support.record_spans import fixture_names, load_fixture

OVERRIDES = """\
- provider: self-hosted
  model: tiny
  prices: {input_mtok: "0.000001", output_mtok: "0.0000003", cache_read_mtok: "0.0000001", reasoning_mtok: "0.0000007"}
- provider: self-hosted
  model: huge
  prices: {input_mtok: "90000000000", output_mtok: "1000000000000000", per_request: "12345678.123456789"}
- provider: self-hosted
  model: edge
  prices: {input_mtok: "0.001", output_mtok: "0.000001", per_request: "9223372.036852275808"}
- provider: self-hosted
  model: frac
  prices: {input_mtok: "0.333333333333", output_mtok: "1.234567890123", cache_read_mtok: "0.0123456789",
           cache_write_mtok: "0.777777777777", reasoning_mtok: "2.5", per_request: "0.000123456789"}
"""


def _c_run() -> Any:
    from genai_meter.collector_processor.metering import _tally  # fails (not skips) when it is not built

    return _tally.run


def test_the_accelerator_is_built_and_used_unless_switched_off() -> None:
    assert callable(_c_run())
    assert tally.ACCELERATED is (os.environ.get(tally.ACCELERATOR_ENV, "").strip().lower() != "off")


def _meter(config: Config | None = None) -> Meter:
    config = config or Config()
    meter = build_meter(config, [UsageMetrics(config, serve=True)])
    meter.bulk = True  # a tally even when the accelerator is switched off (both paths are compared here)
    return meter


def _tally_of(meter: Meter) -> tally.Tally:
    out = meter.tally()
    assert out is not None
    return out


def _plain(value: Any) -> Any:
    """Groups and tuples with entries as their calls and rates and floats as their exact bits."""
    if isinstance(value, tally.TallyEntry):
        return ("entry", value.call, value.pico_rates)
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return (type(value).__name__, *(_plain(v) for v in value))
    return value


def _state(meter: Meter, t: tally.Tally) -> Any:
    return (_plain(t.groups), _plain(list(t.group_index)), list(t.group_index.values()), _plain(t.taken),
            list(meter.nested._parents))


def _drive(meter: Meter, spans: list[SpanRecord], accelerated: bool, t: tally.Tally | None = None
           ) -> tuple[list[int], tally.Tally]:
    """What the Ingestor does with one request: run, assess the span not taken, run on."""
    t = t or _tally_of(meter)
    run = _c_run()
    stops, i = [], 0
    while i < len(spans):
        i = run(t, spans, i) if accelerated else t.run_pure(spans, i)
        stops.append(i)
        if i < len(spans):
            meter.assess(spans[i])
            i += 1
    return stops, t


def _compare(requests: list[list[SpanRecord]], config: Config | None = None, max_parents: int | None = None
             ) -> list[str]:
    """Both paths over the same requests on two meters; returns the models of the spans the C path took."""
    fast, pure = _meter(config), _meter(config)
    if max_parents is not None:
        fast.nested.max_entries = pure.nested.max_entries = max_parents
    taken: list[str] = []
    for spans in requests:
        stops_fast, t_fast = _drive(fast, spans, True)
        stops_pure, t_pure = _drive(pure, spans, False)
        assert stops_fast == stops_pure
        assert _state(fast, t_fast) == _state(pure, t_pure)
        assert all(type(x) is tally.Taken for x in t_fast.taken)
        taken += [t_fast.groups[x.group][tally.G_ENTRY].call.model for x in t_fast.taken]
    return taken


def test_benchmark_bodies_alike() -> None:
    extractor = SpanExtractor()
    for share in (1.0, 0.1):
        bodies = Stamper(template_body(share)).bodies(4)
        requests = [extractor.extract(parse_lean(body)).candidates for body in bodies]
        taken = len(_compare(requests))
        assert taken > 0.8 * sum(len(r) for r in requests) - 512 * share  # the first body teaches


def test_mixed_traffic_alike() -> None:
    """Tiers, batch-free legacy keys, OpenLLMetry's and OpenInference's own keys, audio tokens, several scopes."""
    extractor = SpanExtractor()
    bodies = Stamper(mixed_body()).bodies(4)
    requests = [extractor.extract(parse_lean(body)).candidates for body in bodies]
    assert len(_compare(requests)) > 100


def test_every_fixture_alike() -> None:
    spans = []
    for name in fixture_names():
        span = load_fixture(name)
        spans += [dataclasses.replace(span, span_id=bytes([k, 7, 7, 7, 7, 7, 7, n % 251])) for k, n in
                  enumerate((1, 2, 3))]  # the same resource mapping: the second copy on is taken
    assert len(_compare([spans, spans[::-1]])) >= 20  # the templated shapes among them


def test_a_tally_run_in_pieces_and_again_alike() -> None:
    extractor = SpanExtractor()
    spans = extractor.extract(parse_lean(Stamper(template_body(1.0)).bodies(1)[0])).candidates
    fast, pure = _meter(), _meter()
    _drive(fast, spans, True)
    _drive(pure, spans, False)
    t_fast, t_pure = _tally_of(fast), _tally_of(pure)
    for start in (500, 3, 0):  # groups that exist already, then the same spans again (nested now)
        for t, meter, accelerated in ((t_fast, fast, True), (t_pure, pure, False)):
            _drive(meter, spans[start:start + 40], accelerated, t)
        assert _state(fast, t_fast) == _state(pure, t_pure)


_ODD_COUNT = st.one_of(st.none(), st.integers(0, 10**9), st.integers(-3, -1),
                      st.sampled_from([True, False, "12", 2.0, 10**15, 2**62, 2**63, 2**70, -(2**64)]))
# mostly plain counts, so that runs of spans are taken and the odd ones land among them
_COUNT = st.sampled_from(range(8)).flatmap(lambda k: _ODD_COUNT if k == 0 else st.integers(0, 5000))
_TOKEN_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
               "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.reasoning.output_tokens")
_MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"),
           ("openai", "no-such-model"), ("self-hosted", "tiny"), ("self-hosted", "huge"), ("self-hosted", "edge"),
           ("self-hosted", "frac")]
_START = 10**18
_EDGES = [_START + MAX_CALL_NS - 1, _START + MAX_CALL_NS, _START + MAX_CALL_NS + 1, _START + 2**62, _START - 1]
_TIMES = st.one_of(st.integers(_START - 10**9, _START + 10**10), st.sampled_from(_EDGES))  # a day past the start
_EVENTS = st.lists(st.tuples(st.sampled_from(["gen_ai.content.chunk", "gen_ai.first_token", "ai.stream.firstChunk"]),
                             _TIMES), max_size=3).map(tuple)


@st.composite
def _requests(draw: Any) -> list[list[SpanRecord]]:
    """Requests of spans of a few shapes and deciding values, each span with its own numbers and ids."""
    resources = [{"service.name": "a", "customer.id": "r"}, {"service.name": "b"},
                 {"service.name": "c", "user.id": "u"}]
    token_keys = draw(st.lists(st.sampled_from(_TOKEN_KEYS), unique=True, min_size=1))
    extra = draw(st.lists(st.sampled_from(["customer.id", "feature.id", "error.type", "gen_ai.response.id",
                                           "tags", "customer.id", "feature.id", "gen_ai.conversation.id"]),
                          unique=True, max_size=3))
    profiles = []
    for _ in range(3):
        provider, model = draw(st.sampled_from(_MODELS))
        profile: dict[str, Any] = {"gen_ai.operation.name": draw(st.sampled_from(["chat", "chat", "embeddings"])),
                                   "gen_ai.provider.name": provider, "gen_ai.request.model": model}
        for key in extra:
            profile[key] = draw(st.sampled_from(["x", "y"])) if key != "tags" else draw(
                st.sampled_from([("a", "b"), ["unhashable"]]))
        profiles.append((profile, draw(st.sampled_from([0, 0, 0, 1, 2]))))
    requests = []
    seen_ids: list[bytes] = [b""]
    for r in range(draw(st.integers(1, 3))):
        spans = []
        for i in range(draw(st.integers(1, 24))):
            profile, resource = profiles[draw(st.integers(0, 2))]
            attributes = dict(profile)
            if "gen_ai.response.id" in attributes:
                attributes["gen_ai.response.id"] = f"resp-{r}-{i}"
            for key in token_keys:
                attributes[key] = draw(_COUNT)
            span_id = bytes([r, i, 0, 0, 0, 0, 0, draw(st.integers(1, 3))])
            start = _START
            spans.append(SpanRecord(
                "chat", attributes, resources[resource], start, draw(st.integers(start - 5, start + 10**12) | _TIMES),
                draw(st.sampled_from([False, False, False, True])), "opentelemetry.instrumentation.openai_v2",
                draw(st.sampled_from([b"", bytes(15) + b"\x01", bytes(15) + b"\x02"])), span_id,
                draw(st.sampled_from(seen_ids)), draw(st.sampled_from(["", "", "", "ot=th:8"])), draw(_EVENTS)))
            seen_ids.append(span_id)
        requests.append(spans)
    return requests


def _config(tmp: Path, weight: bool) -> Config:
    path = tmp / "overrides.yaml"
    if not path.exists():
        path.write_text(OVERRIDES, encoding="utf-8")
    return Config.model_validate({"pricing": {"overrides": str(path)},
                                  "sampling": {"weight_by_adjusted_count": weight}})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_requests(), st.booleans(), st.sampled_from([None, 1, 3]))
def test_generated_runs_alike(tmp_path: Path, requests: list[list[SpanRecord]], weight: bool,
                              max_parents: int | None) -> None:
    _compare(requests, _config(tmp_path, weight), max_parents)


def test_generated_runs_take_spans_at_all(tmp_path: Path) -> None:
    """The runs above are no vacuous comparison: the C path takes spans of priced, unpriced and slow entries."""
    config = _config(tmp_path, False)
    spans = []
    for n, (provider, model) in enumerate(_MODELS):
        for i in range(3):
            attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
                          "gen_ai.request.model": model, "gen_ai.usage.input_tokens": 7 + i,
                          "gen_ai.usage.output_tokens": 0}
            spans.append(SpanRecord("chat", attributes, {"service.name": "a"}, 10**18, 10**18 + 5, False,
                                    "opentelemetry.instrumentation.openai_v2", bytes(16), bytes([n, i, 1, 1, 1, 1, 1, 1])))
    resource = spans[0].resource
    spans = [dataclasses.replace(s, resource=resource) for s in spans]
    taken = _compare([spans], config)
    # all but the first of each model whose price is fixed; not "huge": its request fee alone is 2^63 pico or
    # more (C: the reference's path for each span, which leaves it to `Meter.assess`, which flags it)
    assert sorted(taken) == sorted(2 * ["gpt-4o", "gpt-4o-mini", "no-such-model", "tiny", "edge", "frac"])


def _edge_span(n: int, input_tokens: int, output_tokens: int, resource: dict[str, str]) -> SpanRecord:
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "self-hosted", "gen_ai.request.model": "edge",
                  "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens}
    return SpanRecord("chat", attributes, resource, 10**18, 10**18 + 5, False,
                      "opentelemetry.instrumentation.openai_v2", bytes(16), bytes([n, 1, 1, 1, 1, 1, 1, 1]))


def test_the_sum_limit_alike(tmp_path: Path) -> None:
    """Each class below 2^63 pico but their sum (the ledger's list_cost) at 2^63: not taken, by C and pure
    alike; at 2^63 - 1: taken, exactly. "edge" costs a fee of 2^63 - 2,500,000 pico, 1000 pico an input
    token and 1 pico an output token."""
    resource = {"service.name": "a"}
    counts = [(1, 0), (2499, 999), (2500, 0), (2499, 1000), (0, 0), (2499, 999), (10**8, 0)]
    spans = [_edge_span(n, i, o, resource) for n, (i, o) in enumerate(counts)]
    config = _config(tmp_path, False)
    assert len(_compare([spans], config)) == 3  # (2499, 999) twice and (0, 0); the first span teaches
    for accelerated in (True, False):
        meter = _meter(config)
        stops, t = _drive(meter, spans, accelerated)
        assert stops == [0, 2, 3, 6]
        fee = 2**63 - 2_500_000
        assert [x.costs for x in t.taken] == [(2_499_000, 0, 0, 999, 0, fee), (0, 0, 0, 0, 0, fee),
                                              (2_499_000, 0, 0, 999, 0, fee)]
        assert [sum(x.costs) for x in t.taken] == [2**63 - 1, fee, 2**63 - 1]


def _outcome(meter: Meter, t: tally.Tally, spans: list[SpanRecord], accelerated: bool) -> Any:
    try:
        return _c_run()(t, spans, 0) if accelerated else t.run_pure(spans, 0)
    except Exception as exc:  # the reference's exception, raised by the reference for both
        return type(exc)


def test_odd_spans_take_the_reference_path_alike() -> None:
    """Values the C path does not model go through `Tally._take` itself: the same outcome, exception included."""
    base = SpanRecord("chat", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                               "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10,
                               "gen_ai.usage.output_tokens": 3}, {"service.name": "a"}, 10**18, 10**18 + 9,
                      False, "opentelemetry.instrumentation.openai_v2", bytes(15) + b"\x01", bytes(8), b"")
    odd: list[dict[str, Any]] = [
        {"events": [["gen_ai.first_token", 10**18 + 5]]}, {"events": (("gen_ai.first_token", 10**18 + 0.5),)},
        {"events": (("gen_ai.first_token",),)}, {"events": ((["unhashable"], 1),)}, {"end_ns": 10**18 + 2.5},
        {"end_ns": 2**70}, {"start_ns": -(2**64)}, {"trace_id": "abc"}, {"trace_id": b""}, {"span_id": None},
        {"parent_span_id": bytearray(b"12345678")}, {"is_error": []}, {"attributes": "not a dict"},
        {"trace_state": "ot=th:8"}, {"scope_name": ["unhashable"]},
    ]
    fast, pure = _meter(), _meter()
    for meter in (fast, pure):
        _drive(meter, [dataclasses.replace(base, span_id=bytes([9] * 8)), base], False)
    for n, change in enumerate(odd):
        span = dataclasses.replace(base, **{"span_id": bytes([n + 1] * 8), **change})
        t_fast, t_pure = _tally_of(fast), _tally_of(pure)
        outcome = _outcome(fast, t_fast, [span], True)
        assert outcome == _outcome(pure, t_pure, [span], False), change
        assert _state(fast, t_fast) == _state(pure, t_pure), change


def test_no_references_kept() -> None:
    extractor = SpanExtractor()
    bodies = Stamper(template_body(1.0)).bodies(2)
    requests = [extractor.extract(parse_lean(body)).candidates for body in bodies]
    meter = _meter()
    for spans in requests:  # learns; the resource caches are the last request's
        _drive(meter, spans, True)
    run = _c_run()

    def once() -> None:
        t = _tally_of(meter)
        meter.nested._parents.clear()
        assert run(t, spans, 0) == len(spans) and len(t.taken) == len(spans)

    for _ in range(20):
        once()
    gc.collect()
    before = len(gc.get_objects())
    refs = [sum(map(sys.getrefcount, (s, s.attributes, s.trace_id))) for s in spans]
    for _ in range(300):
        once()
    gc.collect()
    assert len(gc.get_objects()) <= before + 50
    assert [sum(map(sys.getrefcount, (s, s.attributes, s.trace_id))) for s in spans] == refs


def test_durations_and_ttfts_past_a_day_are_unknown_alike() -> None:
    """A span of exactly a day keeps its figures; a nanosecond more makes the duration 0.0 (unknown) and a
    first-token event a nanosecond past a day (or before the start) no TTFT."""
    base = _edge_span(0, 10, 3, {"service.name": "a"})
    spans = [dataclasses.replace(base, span_id=bytes([n + 1] * 8), end_ns=base.start_ns + length,
                                 events=(("gen_ai.first_token", base.start_ns + first),))
             for n, (length, first) in enumerate([(5, 2), (MAX_CALL_NS, MAX_CALL_NS), (MAX_CALL_NS + 1, MAX_CALL_NS + 1),
                                                  (10**9, -1), (-5, 3)])]
    for accelerated in (True, False):
        meter = _meter()
        stops, t = _drive(meter, spans, accelerated)
        assert stops == [0, 5]  # the first teaches, the others are taken
        assert [(x.duration_s, x.ttft_s) for x in t.taken] == [(86_400.0, 86_400.0), (0.0, None), (1.0, None),
                                                                (0.0, 3e-9)]


# -- hostile spans: Python code that runs while the C code reads a span ---------------------------

_KEEP: list[Any] = []  # what the hostile code allocates, kept alive (it reuses what the span freed)


# one resource mapping for every span here: the tally takes spans of the resource the meter read last
_HOSTILE_BASE = SpanRecord("chat", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                    "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10,
                                    "gen_ai.usage.output_tokens": 3},
                           {"service.name": "hostile"}, _START, _START + 9, False,
                           "opentelemetry.instrumentation.openai_v2", bytes(15) + b"\x01", bytes(8), b"")


def _taught(weight: bool, tmp: Path) -> tuple[Meter, Meter]:
    """Two meters (C and pure) that learned the base span's template."""
    base = _HOSTILE_BASE
    fast, pure = _meter(_config(tmp, weight)), _meter(_config(tmp, weight))
    for meter in (fast, pure):
        _drive(meter, [dataclasses.replace(base, span_id=bytes([9] * 8)), base], False)
    return fast, pure


def _alike(fast: Meter, pure: Meter, make: Any, taken: int | None = None) -> None:
    """A fresh hostile span (from `make`) through each path: the same outcome and state (and `taken` spans taken)."""
    t_fast, t_pure = _tally_of(fast), _tally_of(pure)
    outcome = _outcome(fast, t_fast, [make()], True)
    assert outcome == _outcome(pure, t_pure, [make()], False)
    assert _state(fast, t_fast) == _state(pure, t_pure)
    assert taken is None or len(t_pure.taken) == taken


def test_an_event_name_that_empties_the_event_list_when_compared(tmp_path: Path) -> None:
    """Regression: the C code held the event tuple by a borrowed pointer across the first-token set lookup, whose
    __eq__ here empties the span's event list (freeing the tuple) and allocates a tuple of text in its place."""

    class Emptying(str):
        __hash__ = str.__hash__

        def __eq__(self, other: object) -> bool:
            events.clear()
            _KEEP.append((f"reused-{len(_KEEP)}", "not a time"))  # a new tuple: takes the freed one's memory
            return str.__eq__(self, other)

    events: list[Any] = []
    fast, pure = _taught(False, tmp_path)
    base = _HOSTILE_BASE

    def make() -> SpanRecord:
        events[:] = [(Emptying("gen_ai.first_token"), _START + int("5"))]  # built at run time: freeable
        return dataclasses.replace(base, span_id=bytes([3] * 8), events=events)

    _alike(fast, pure, make, taken=1)


def test_a_trace_state_whose_truth_test_replaces_the_token_counts(tmp_path: Path) -> None:
    """Regression: the C code held the token counts by borrowed pointers across the trace state's truth test, whose
    __bool__ here replaces them (freeing the ints) and allocates other ints in their place."""

    class Replacing(str):
        def __bool__(self) -> bool:
            attributes["gen_ai.usage.input_tokens"] = 0
            attributes["gen_ai.usage.output_tokens"] = 0
            _KEEP.extend([10**6 + i for i in range(8)])  # ints where the counts were
            return False

    fast, pure = _taught(True, tmp_path)
    base = _HOSTILE_BASE
    attributes: dict[str, Any] = {}

    def make() -> SpanRecord:
        attributes.clear()
        attributes.update(base.attributes)
        attributes["gen_ai.usage.input_tokens"] = int("1000") + 7  # fresh ints (no constant holds them)
        attributes["gen_ai.usage.output_tokens"] = int("2000") + 9
        return dataclasses.replace(base, span_id=bytes([4] * 8), attributes=attributes, trace_state=Replacing(""))

    _alike(fast, pure, make, taken=1)
    t = _tally_of(fast)
    _c_run()(t, [make()], 0)
    assert t.taken[0].tokens == (1007, 0, 0, 2009, 0)


class _Loud(str):
    """A str subclass: its hash and equality are Python code."""

    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        return str.__eq__(self, other)


def test_spans_that_could_run_python_code_go_to_the_reference_alike(tmp_path: Path) -> None:
    """str subclasses as keys, values, scope, event names or trace state; an int for is_error; a subclass of the
    record type with a property: the C code hands each such span to the reference (the same outcome and state)."""
    base = _HOSTILE_BASE

    class Record(SpanRecord):
        __slots__ = ()

        @property  # type: ignore[misc]
        def events(self) -> Any:
            return (("gen_ai.first_token", _START + 4),)

    changes: list[Any] = [
        {"attributes": {_Loud(k) if k == "gen_ai.request.model" else k: v for k, v in base.attributes.items()}},
        {"attributes": {**base.attributes, "gen_ai.request.model": _Loud("gpt-4o")}},
        {"scope_name": _Loud(base.scope_name)}, {"events": ((_Loud("gen_ai.first_token"), _START + 4),)},
        {"trace_state": _Loud("")}, {"is_error": 0}, {"attributes": {**base.attributes, "gen_ai.usage.input_tokens": 2**62}},
    ]
    for weight in (False, True):
        fast, pure = _taught(weight, tmp_path)
        for change in changes:
            _alike(fast, pure, lambda: dataclasses.replace(base, span_id=bytes([5] * 8), **change))
    fast, pure = _taught(False, tmp_path)
    t_fast, t_pure = _tally_of(fast), _tally_of(pure)
    record = object.__new__(Record)
    for f in dataclasses.fields(SpanRecord):  # the slots, through SpanRecord's own descriptors
        SpanRecord.__dict__[f.name].__set__(record, getattr(base, f.name))
    assert _c_run()(t_fast, [record], 0) == t_pure.run_pure([record], 0)
    assert _state(fast, t_fast) == _state(pure, t_pure) and t_fast.taken[0].ttft_s == 4e-9
