"""The time figures and weights of a span are range-checked where the receiver reads it (docs/accuracy.md,
"Times and weights"), on the C path (extraction, bulk tally, ledger parameters) and the pure path alike:

- an end time that is no plausible instant (2^63 ns or later, past the clock-skew allowance, older than
  the ledger keeps) refuses the span: a partial success naming the reason, rejected{reason}, nothing
  stored, and the other spans of the request (and of the same group commit) are stored as usual;
- a duration or a time to first token outside 0..1 day is unknown (0 / None), never an overflow of the
  ledger's integer microseconds;
- a sample weight past MAX_SAMPLE_WEIGHT makes the call invalid with a reason, never an overflow of the
  ledger's integer millionths.

Before these checks, every one of these spans made the ledger's commit raise, and the request (with every
other request of the same group commit) was answered 503 (`Unavailable`)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from genai_meter import contract
from genai_meter.collector_processor.metering import build_meter
from genai_meter.collector_processor.metering.weights import INVALID_SAMPLE_WEIGHT
from genai_meter.collector_processor.receiver.decode import MEDIA_PROTOBUF, decode
from genai_meter.collector_processor.receiver.dedup import SeenSpans
from genai_meter.collector_processor.receiver.ingest import Ingestor, Outcome
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from tests.support.otlp import llm_attributes, make_request, make_span

DAY_NS = 86_400 * 10**9
PATHS = ["accelerated", "pure"]  # C extraction + bulk tally + C ledger parameters, or the pure references


class Receiver:
    """An Ingestor with a real SQLite ledger, on the C path or the pure path."""

    def __init__(self, tmp: Path, path: str, config: Config | None = None) -> None:
        self.config = config or Config()
        self.metrics = UsageMetrics(self.config, serve=True)
        meter = build_meter(self.config, [self.metrics])
        self.writer = SQLiteWriter(tmp / "ledger.db", self.config)
        self.file = tmp / "ledger.db"
        self.ingestor = Ingestor(meter, self.metrics, SeenSpans(600, 100_000), ledger=self.writer)
        if path == "pure":
            meter.bulk = False
            self.ingestor.extractor._scanner = None  # extract_data gives None: the pure extraction
        else:
            assert self.ingestor.extractor.accelerated and meter.tally() is not None

    def export(self, spans: list[Span]) -> Outcome:
        return self.ingestor.export(decode(make_request(spans).SerializeToString(), MEDIA_PROTOBUF))

    def calls(self, columns: str = "end_ns, duration_us, ttft_us, invalid, weight_micro") -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.file) as conn:
            return conn.execute(f"SELECT {columns} FROM calls ORDER BY end_ns, span_id").fetchall()

    def rejected(self, reason: str) -> float:
        return self.metrics.get(contract.SELF_SPANS_REJECTED, reason=reason) or 0

    def close(self) -> None:
        self.writer.close()


@pytest.fixture(params=PATHS)
def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    made = Receiver(tmp_path, request.param)
    yield made
    made.close()


def ended_at(end_ns: int, customer: str = "times", duration_ns: int = 10**9) -> Span:
    return make_span(llm_attributes(customer=customer), start_ns=end_ns - duration_ns, duration_ns=duration_ns)


def test_implausible_end_times_are_refused_and_the_rest_is_stored(receiver: Receiver) -> None:
    now = time.time_ns()
    year_2099 = 4_083_000_000 * 10**9
    spans = [ended_at(now - 10**9), ended_at(year_2099), ended_at(now + 3600 * 10**9), ended_at(2**63 + 5),
             ended_at(2**64 - 1), ended_at(now - 401 * DAY_NS), ended_at(now - 2 * 10**9)]
    outcome = receiver.export(spans)
    assert (outcome.counted, outcome.rejected) == (2, 5)
    assert "2 span(s) rejected: end_time_in_future" in outcome.message
    assert "2 span(s) rejected: end_time_out_of_range" in outcome.message
    assert "1 span(s) rejected: too_old" in outcome.message
    assert (receiver.rejected("end_time_in_future"), receiver.rejected("end_time_out_of_range"),
            receiver.rejected("too_old")) == (2, 2, 1)
    assert [row[0] for row in receiver.calls()] == [now - 2 * 10**9, now - 10**9]  # the latest call is now's
    assert receiver.metrics.get(contract.SELF_SPANS_COUNTED) == 2


def test_a_refused_span_does_not_fail_another_request_committed_with_it(receiver: Receiver) -> None:
    """One group commit of several requests: the refused span is never part of it."""
    now = time.time_ns()
    first = receiver.export([ended_at(now - 10**9, customer="innocent")] * 1)
    second = receiver.export([ended_at(2**63, customer="hostile"), ended_at(now, customer="innocent")])
    assert (first.counted, second.counted, second.rejected) == (1, 1, 1)
    assert len(receiver.calls()) == 2


def test_end_times_at_the_bounds(receiver: Receiver) -> None:
    """Within the skew allowance (10 minutes by default) and the retention (400 days) a span is stored."""
    now = time.time_ns()
    outcome = receiver.export([ended_at(now + 590 * 10**9), ended_at(now - 399 * DAY_NS)])
    assert (outcome.counted, outcome.rejected) == (2, 0)


def test_without_a_ledger_nothing_is_too_old(tmp_path: Path) -> None:
    config = Config()
    metrics = UsageMetrics(config, serve=True)
    ingestor = Ingestor(build_meter(config, [metrics]), metrics, SeenSpans(600, 1000))
    outcome = ingestor.export(decode(make_request([ended_at(10**9), ended_at(2**63)]).SerializeToString(),
                                     MEDIA_PROTOBUF))
    assert (outcome.counted, outcome.rejected) == (1, 1)
    assert metrics.get(contract.SELF_SPANS_REJECTED, reason="too_old") is None


def test_the_skew_allowance_is_configurable(tmp_path: Path) -> None:
    config = Config.model_validate({"receiver": {"max_future_skew_seconds": 5}})
    made = Receiver(tmp_path, "accelerated", config)
    try:
        now = time.time_ns()
        outcome = made.export([ended_at(now + 60 * 10**9), ended_at(now)])
        assert (outcome.counted, outcome.rejected) == (1, 1)
    finally:
        made.close()


def test_durations_and_ttfts_out_of_range_are_unknown(receiver: Receiver) -> None:
    """Eight spans of one shape (the bulk tally takes all but the first on the C path): durations of 0..1 day
    and first-token events within a day of the start are kept, the others are unknown."""
    now = time.time_ns()
    shapes = [  # (start, first-token event time or None, TTFT attribute or None)
        (now - 2 * 10**9, now - 10**9, None),  # 2 s, TTFT 1 s
        (0, None, None),  # started at 1970: a duration of 56 years
        (now + 10**9, None, None),  # started after it ended
        (now - DAY_NS, now - DAY_NS, None),  # exactly one day, TTFT 0
        (now - DAY_NS - 10, now, None),  # a day and 6 ns; the TTFT a day and 10 ns
        (now - 10**9, now - 2 * 10**9, None),  # first token before the start
        (now - 10**9, None, 9.3e12),  # a TTFT attribute of 9.3e12 s (ttft_us past 2^63)
        (now - 10**9, None, 0.25),
    ]
    spans = []
    for i, (start, event, ttft) in enumerate(shapes):
        extra = {} if ttft is None else {"gen_ai.response.time_to_first_chunk": ttft}
        span = make_span(llm_attributes(customer="d", **extra), start_ns=start, duration_ns=now - i - start)
        if event is not None:
            span.events.add(name="gen_ai.first_token", time_unix_nano=event)
        spans.append(span)
    outcome = receiver.export(spans)
    assert (outcome.counted, outcome.rejected) == (8, 0)
    rows = receiver.calls("duration_us, ttft_us")[::-1]  # ordered by end time, which falls with i
    assert rows == [(2_000_000, 1_000_000), (0, None), (0, None), (86_400_000_000, 0), (0, None), (1_000_000, None),
                    (1_000_000, None), (1_000_000, 250_000)]


@pytest.mark.parametrize("trace_state, weight_micro, invalid", [
    ("ot=th:c", 4_000_000, ""),  # p = 1/4
    ("ot=p:19", 524_288_000_000, ""),  # 2^19: within MAX_SAMPLE_WEIGHT
    ("ot=p:20", 1_000_000, INVALID_SAMPLE_WEIGHT),  # 2^20 > 10^6
    ("ot=th:fffffffffffff", 1_000_000, INVALID_SAMPLE_WEIGHT),  # 2^52: weight_micro past 2^63 before
    ("ot=p:62", 1_000_000, INVALID_SAMPLE_WEIGHT),
])
def test_sample_weights_out_of_range_make_the_call_invalid(tmp_path: Path, trace_state: str, weight_micro: int,
                                                            invalid: str) -> None:
    config = Config.model_validate({"sampling": {"weight_by_adjusted_count": True}})
    for path in PATHS:
        (tmp_path / path).mkdir()
        made = Receiver(tmp_path / path, path, config)
        try:
            span = make_span(llm_attributes(customer="w"), trace_state=trace_state)
            outcome = made.export([span])
            assert outcome.counted == 1  # an invalid call is stored flagged, and counted in rejected{reason}
            assert made.calls("weight_micro, invalid, t_input") == [(weight_micro, invalid, 0 if invalid else 1000)]
            assert made.rejected(INVALID_SAMPLE_WEIGHT) == (1 if invalid else 0)
            requests = sum(v for (name, _), v in made.metrics.samples().items() if name == "llm_requests_total")
            assert requests == (0 if invalid else weight_micro / 1_000_000)
        finally:
            made.close()
