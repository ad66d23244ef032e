"""The receiver's core, shared by OTLP/HTTP and OTLP/gRPC: a decoded request in, spans counted once.

`Ingestor.export(decoded)` runs on the receiving thread and returns only after every span of the
request is in the metrics (so a cost is on /metrics before the client has its answer):

1. `SpanExtractor` walks the spans once: non-GenAI spans are only counted (skipped{not_llm});
   candidates become `SpanRecord`s; candidates with invalid ids are rejected (partial success);
2. the candidates' (trace id, span id) keys go through the dedup set in one batch; duplicates are
   counted in genai_meter_spans_duplicate_total and go no further;
3. every new candidate goes through `Meter.process` (conventions -> price -> recorders);
4. with forwarding on, the request is handed to the `Forwarder` with the counted calls and costs.

`export` never raises for span content and never answers an error after counting: whatever the
spans hold, the outcome is a (possibly partial) success. `Gate` bounds the requests in flight
across both receivers and drives the drain on shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from genai_meter import contract
from genai_meter.collector_processor.forwarding.forwarder import Forwarder
from genai_meter.collector_processor.metering.meter import Meter
from genai_meter.collector_processor.receiver.decode import Decoded
from genai_meter.collector_processor.metering.weights import adjusted_count
from genai_meter.collector_processor.receiver.spans import SpanExtractor
from genai_meter.records import Cost, LLMCall

log = logging.getLogger("genai_meter")


class Dedup(Protocol):
    """`SeenSpans`, or the worker-side client of the parent's set (collector_processor.workers)."""

    def filter_new(self, keys: Sequence[bytes]) -> list[bool]: ...


class SelfMetrics(Protocol):
    def record_self(self, name: str, amount: float = 1, **labels: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the client is told: spans rejected (partial success) and why."""

    rejected: int = 0
    message: str = ""
    counted: int = 0  # LLM calls counted from this request (for logs and tests)
    duplicates: int = 0


class Ingestor:
    """Counts decoded requests. Thread-safe (dedup and recorders are); holds no lock of its own."""

    def __init__(self, meter: Meter, metrics: SelfMetrics, dedup: Dedup, *,
                 extractor: SpanExtractor | None = None, forwarder: Forwarder | None = None) -> None:
        self.meter = meter
        self.metrics = metrics
        self.dedup = dedup
        self.extractor = extractor or SpanExtractor()
        self.forwarder = forwarder
        # One request is counted at a time. The work holds the GIL anyway, so this costs no
        # throughput; without it, concurrent gRPC handler threads preempt each other inside the
        # store's and dedup's locks and queue on them span after span (a lock convoy).
        self._lock = threading.Lock()

    @property
    def needs_full(self) -> bool:
        """Whether `export` needs `Decoded.full` (the forwarder sends the full message on)."""
        return self.forwarder is not None

    def export(self, decoded: Decoded) -> Outcome:
        """Count every span of a decoded request once. Never raises for span content."""
        with self._lock:
            return self._export(decoded)

    def decode_and_export(self, decode: Callable[[], Decoded]) -> Outcome:
        """`export(decode())`, the decoding under the same lock: a thread then runs Python code
        only while it holds the lock, and the others wait without asking for the GIL (handing it
        back and forth between threads costs a third of the throughput). Raises what `decode`
        raises (nothing is counted then)."""
        with self._lock:
            return self._export(decode())

    def _export(self, decoded: Decoded) -> Outcome:
        skip_all = not self.extractor.maybe_has_candidates(decoded.data)
        found = self.extractor.extract(decoded.lean, skip_all=skip_all)
        record_self = self.metrics.record_self
        if found.received:
            record_self(contract.SELF_SPANS_RECEIVED, found.received)
        if found.not_candidate:
            record_self(contract.SELF_SPANS_SKIPPED, found.not_candidate, reason=contract.SKIP_NOT_LLM)
        for reason, n in found.rejected.items():
            record_self(contract.SELF_SPANS_REJECTED, n, reason=reason)

        counted_calls: dict[tuple[bytes, bytes], tuple[LLMCall, Cost | None]] = {}
        counted = duplicates = sampled = 0
        candidates = found.candidates
        if candidates:
            fresh = self.dedup.filter_new([r.trace_id + r.span_id for r in candidates])
            forwarding = self.forwarder is not None
            process = self.meter.process
            # one span at a time, all the way into the metrics: its objects are freed before the
            # next span's are made (holding a request's worth alive makes the garbage collector
            # promote them, and run full collections of the whole heap several times as often)
            for record, new in zip(candidates, fresh):
                if not new:
                    duplicates += 1
                    continue
                if record.trace_state and adjusted_count(record.trace_state) is not None:
                    sampled += 1
                metered = process(record)
                if metered is not None:
                    counted += 1
                    if forwarding:
                        counted_calls[(record.trace_id, record.span_id)] = metered
            if duplicates:
                record_self(contract.SELF_SPANS_DUPLICATE, duplicates)
            if sampled:
                record_self(contract.SELF_SPANS_SAMPLED, sampled)
        if self.forwarder is not None and decoded.full is not None:
            self.forwarder.submit(decoded.full, counted_calls)  # takes the message over
        rejected = found.rejected_total
        message = ""
        if rejected:
            message = "; ".join(f"{n} span(s) rejected: {reason}" for reason, n in sorted(found.rejected.items()))
        return Outcome(rejected=rejected, message=message, counted=counted, duplicates=duplicates)
