"""The receiver's core, shared by OTLP/HTTP and OTLP/gRPC: a decoded request in, spans counted once.

`Ingestor.export(decoded)` runs on the receiving thread and returns only after every span of the
request is counted (so a cost is on /metrics before the client has its answer):

1. `SpanExtractor` walks the spans once: non-GenAI spans are only counted (skipped{not_llm});
   candidates become `SpanRecord`s; candidates with invalid ids or an end time that is no plausible
   instant (conventions.times.EndTimes) are rejected (partial success);
2. the candidates' (trace id, span id) keys are claimed in the dedup set in one batch; duplicates
   are counted in genai_meter_spans_duplicate_total and go no further;
3. every new candidate is assessed (`Meter.assess`: conventions -> price, nothing recorded yet);
4. with the ledger on, the calls go to its group commit; the request waits for the commit without
   holding the ingest lock (commits group across requests), then `Meter.record`s only the calls
   the ledger stored for the first time and settles its claims; a ledger refusal releases the
   claims and raises `Unavailable` (503 / UNAVAILABLE, nothing counted); a call the ledger can never
   store (`LedgerRowRejected`) makes the request's calls rejected spans instead (partial success);
5. with forwarding on, the request is handed to the `Forwarder` with the counted calls and costs.

`export` never raises for span content. `Gate` bounds the requests in flight across both receivers
and drives the drain on shutdown. Money is added as integer 10^-12 USD (`Cost.pico`) for the
ledger/metrics reconciliation.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Protocol

from genai_meter import contract
from genai_meter.collector_processor.forwarding.forwarder import Forwarder
from genai_meter.collector_processor.metering.meter import Meter
from genai_meter.collector_processor.metering.tally import Tally
from genai_meter.collector_processor.metering.weights import adjusted_count
from genai_meter.collector_processor.receiver.decode import Decoded
from genai_meter.collector_processor.receiver.spans import SpanExtractor
from genai_meter.collector_processor.receiver.tally_rows import TallyParams, tally_rows
from genai_meter.conventions.times import EndTimes
from genai_meter.ledger import Entry, LedgerRowRejected, LedgerUnavailable, LedgerWriter
from genai_meter.ledger.commit_queue import refused
from genai_meter.ledger.rows import RowBuilder
from genai_meter.ledger.sqlite_params import ParamsLedger
from genai_meter.records import Cost, LLMCall, SpanRecord, ToolCall

log = logging.getLogger("genai_meter")

# The receiver allocates ~30 garbage-collector-tracked objects per LLM span (records, dicts, tuples)
# that nearly all die with their request. With CPython's default first-generation threshold (700) a
# collection ran every ~25 spans and, with requests waiting for the ledger's commit, promoted their
# objects into full collections of the whole heap: 11-22 % of the request thread's CPU measured
# (benchmarks/stages.py, docs/performance.md). Past this threshold collections all but stop; the
# receiver makes almost no reference cycles, so memory stays where it was.
GC_FIRST_GENERATION = 10_000


def tune_garbage_collector(first_generation: int = GC_FIRST_GENERATION) -> None:
    """Raise (never lower) the garbage collector's first-generation threshold for a receiver process."""
    threshold = gc.get_threshold()
    if threshold[0] < first_generation:
        gc.set_threshold(first_generation, *threshold[1:])


class Dedup(Protocol):
    """`SeenSpans`, or the worker-side client of the parent's set (receiver.workers)."""

    def claim(self, keys: Sequence[bytes]) -> list[bool]: ...

    def settle(self, keys: Sequence[bytes]) -> None: ...

    def release(self, keys: Sequence[bytes]) -> None: ...


class SelfMetrics(Protocol):
    def record_self(self, name: str, amount: float = 1, **labels: str) -> None: ...


class Unavailable(RuntimeError):
    """The request could not be counted now (the ledger refused it); nothing of it was counted."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the client is told: spans rejected (partial success) and why."""

    rejected: int = 0
    message: str = ""
    counted: int = 0  # LLM calls counted from this request (for logs and tests)
    duplicates: int = 0


@dataclass(slots=True)
class _Pending:
    """A request between assessment and recording (while its ledger commit is under way)."""

    decoded: Decoded
    rejected: dict[str, int]
    claimed: list[bytes]
    assessed: list[tuple[SpanRecord, LLMCall, Cost | None]]
    skips: dict[str, int]
    duplicates: int
    tools: list[ToolCall] = field(default_factory=list)  # tool spans (skipped as non_inference), by tool
    tally: Tally | None = None  # the calls counted in bulk (metering.tally), after `assessed` in the ledger


class Ingestor:
    """Counts decoded requests. Thread-safe (dedup, ledger writer and recorders are).

    `ledger` None means `--ledger none`: calls go straight into the metrics. `commit_timeout_s`
    bounds the wait for the ledger's commit (past it: `Unavailable`).
    """

    def __init__(self, meter: Meter, metrics: SelfMetrics, dedup: Dedup, *,
                 extractor: SpanExtractor | None = None, forwarder: Forwarder | None = None,
                 ledger: LedgerWriter | None = None, commit_timeout_s: float = 10.0) -> None:
        self.meter = meter
        self.metrics = metrics
        self.dedup = dedup
        # end times: the clock-skew allowance, and the ledger's retention when there is a ledger
        self.extractor = extractor or SpanExtractor(end_times=EndTimes.of(meter.config, ledger is not None))
        self.forwarder = forwarder
        self.ledger = ledger
        self.commit_timeout_s = commit_timeout_s
        self.reconcile = Reconciliation()
        self._rows = RowBuilder(meter.config)
        # the SQLite ledger takes its insert parameters, built here (bulk-counted calls' in C when built)
        self._sqlite = ((ledger, TallyParams(self._rows, ledger.dictionaries)) if isinstance(ledger, ParamsLedger)
                        else None)
        tune_garbage_collector()
        # Python work runs one request at a time. The work holds the GIL anyway, so this costs no
        # throughput; without it, concurrent gRPC handler threads preempt each other inside the
        # store's and dedup's locks and queue on them span after span (a lock convoy). The lock is
        # released while a request waits for its ledger commit, so commits group across requests.
        self._lock = threading.Lock()

    @property
    def needs_full(self) -> bool:
        """Whether `export` needs `Decoded.full` (the forwarder sends the full message on)."""
        return self.forwarder is not None

    def export(self, decoded: Decoded) -> Outcome:
        """Count every span of a decoded request once; raises `Unavailable` when the ledger refused
        the request (nothing counted). Never raises for span content."""
        with self._lock:
            pending = self._assess(decoded)
        return self._finish(pending)

    def decode_and_export(self, decode: Callable[[], Decoded]) -> Outcome:
        """`export(decode())`, the decoding under the same lock: a thread then runs Python code
        only while it holds the lock, and the others wait without asking for the GIL (handing it
        back and forth between threads costs a third of the throughput). Raises what `decode`
        raises (nothing is counted then)."""
        with self._lock:
            pending = self._assess(decode())
        return self._finish(pending)

    def _assess(self, decoded: Decoded) -> _Pending:
        skip_all = not self.extractor.maybe_has_candidates(decoded.data)
        found = None if skip_all else self.extractor.extract_data(decoded.data)  # C, when built
        if found is None:
            found = self.extractor.extract(decoded.lean, skip_all=skip_all)
        record_self = self.metrics.record_self
        if found.received:
            record_self(contract.SELF_SPANS_RECEIVED, found.received)
        for reason, n in found.rejected.items():
            record_self(contract.SELF_SPANS_REJECTED, n, reason=reason)
        pending = _Pending(decoded, found.rejected, [], [], {}, 0)
        if found.not_candidate:
            pending.skips[contract.SKIP_NOT_LLM] = found.not_candidate
        candidates = found.candidates
        if not candidates:
            return pending
        keys = [r.trace_id + r.span_id for r in candidates]
        fresh = self.dedup.claim(keys)
        records = []
        sampled = 0
        for record, key, new in zip(candidates, keys, fresh):
            if not new:
                pending.duplicates += 1
                continue
            pending.claimed.append(key)
            records.append(record)
            if record.trace_state and adjusted_count(record.trace_state) is not None:
                sampled += 1
        if sampled:
            record_self(contract.SELF_SPANS_SAMPLED, sampled)
        tally = self.meter.tally() if self.forwarder is None else None
        if tally is None:
            for record in records:
                self._assess_one(record, pending)
        else:  # templated calls in bulk; each other span, in its turn, through Meter.assess
            pending.tally = tally
            try:
                i, n = 0, len(records)
                while i < n:
                    i = tally.run(records, i)
                    if i < n:
                        self._assess_one(records[i], pending)
                        i += 1
            except Exception as exc:  # a defect, never span content: count it, then every span one by one
                self.meter.count_error(exc)
                pending.tally, pending.assessed, pending.skips, pending.tools = None, [], {}, []
                if found.not_candidate:
                    pending.skips[contract.SKIP_NOT_LLM] = found.not_candidate
                for record in records:
                    self._assess_one(record, pending)
        return pending

    def _submit(self, ledger: LedgerWriter, pending: _Pending) -> Future[list[bool]]:
        """The ledger's commit of the assessed calls, then the bulk-counted ones; a failed Future when
        the ledger refuses them now (or building them met a defect, counted as a processing error).
        Runs outside the ingest lock: a new label set's id may wait for the file's write lock."""
        try:
            rows = self._rows.rows([Entry(call, cost) for _, call, cost in pending.assessed])
            tally = pending.tally
            if self._sqlite is None:
                if tally is not None:
                    rows.extend(tally_rows(tally, self._rows))
                return ledger.submit_rows(rows)
            sqlite, tally_params = self._sqlite
            params = sqlite.params_of(rows)
            if tally is not None:
                params.extend(tally_params.params(tally))
        except (LedgerUnavailable, LedgerRowRejected) as exc:  # a new label set that cannot be stored (now)
            return refused(exc)
        except Exception as exc:  # a defect: the request is refused whole (its claims released)
            self.meter.count_error(exc)
            return refused(LedgerUnavailable(f"the calls could not be made ready for the ledger: {exc}"))
        return sqlite.submit_params(params)

    def _assess_one(self, record: SpanRecord, pending: _Pending) -> None:
        outcome = self.meter.assess(record)
        if outcome is None:
            return  # a processing error, counted by the Meter
        skips = pending.skips
        if isinstance(outcome, str):
            skips[outcome] = skips.get(outcome, 0) + 1
        elif isinstance(outcome, ToolCall):
            skips[contract.SKIP_NON_INFERENCE] = skips.get(contract.SKIP_NON_INFERENCE, 0) + 1
            pending.tools.append(outcome)
        else:
            pending.assessed.append((record, outcome[0], outcome[1]))

    def _finish(self, pending: _Pending) -> Outcome:
        stored: list[bool] | None = None
        if self.ledger is not None and (pending.assessed or (pending.tally is not None and pending.tally.taken)):
            try:
                stored = self._submit(self.ledger, pending).result(self.commit_timeout_s)
            except LedgerRowRejected as exc:  # a call the ledger can never store: the request's calls rejected
                self._reject_calls(pending, exc)
            except (LedgerUnavailable, FutureTimeout, OSError) as exc:
                self.dedup.release(pending.claimed)
                self.metrics.record_self(contract.SELF_LEDGER_FAILURES)
                raise Unavailable(f"the ledger cannot take calls now: {exc}") from None
        with self._lock:
            return self._record(pending, stored)

    def _reject_calls(self, pending: _Pending, exc: LedgerRowRejected) -> None:
        """Nothing of the request was stored and a retry cannot help: its calls become rejected spans
        (partial success, counted in rejected{ledger_row_rejected}), its claims are released."""
        calls = len(pending.assessed) + (len(pending.tally.taken) if pending.tally is not None else 0)
        log.warning("genai-meter: %d call(s) of a request not stored: %s", calls, exc.reason)
        self.dedup.release(pending.claimed)
        pending.claimed, pending.assessed, pending.tally = [], [], None
        self.metrics.record_self(contract.SELF_SPANS_REJECTED, calls, reason=contract.REJECT_LEDGER_ROW)
        pending.rejected = {**pending.rejected, f"{contract.REJECT_LEDGER_ROW} ({exc.reason})": calls}

    def _record(self, pending: _Pending, stored: list[bool] | None) -> Outcome:
        meter = self.meter
        forwarding = self.forwarder is not None
        counted_calls: dict[tuple[bytes, bytes], tuple[LLMCall, Cost | None]] = {}
        counted = 0
        duplicates = pending.duplicates
        ledger_pico = metrics_pico = 0
        for i, (record, call, cost) in enumerate(pending.assessed):
            if stored is not None and not stored[i]:
                duplicates += 1  # stored before (a retry after a crash, or another worker's copy)
                continue
            pico = sum(cost.pico or cost.picos()) if cost is not None and not call.invalid else 0
            if meter.record(call, cost):
                counted += 1
                metrics_pico += pico
                if forwarding:
                    counted_calls[(record.trace_id, record.span_id)] = (call, cost)
            if stored is not None:
                ledger_pico += pico
        tally = pending.tally
        if tally is not None and tally.taken:
            keep = None if stored is None else stored[len(pending.assessed):]
            if keep is not None and all(keep):
                keep = None
            if keep is not None:
                duplicates += keep.count(False)
            taken_counted, taken_pico = meter.record_tally(tally, keep)
            counted += taken_counted
            metrics_pico += taken_pico
            if stored is not None:
                ledger_pico += sum(sum(t.costs) for i, t in enumerate(tally.taken) if keep is None or keep[i])
        for reason, n in pending.skips.items():
            if reason == contract.SKIP_NOT_LLM:
                self.metrics.record_self(contract.SELF_SPANS_SKIPPED, n, reason=reason)
            else:
                meter.record_skip(reason, n)
        for tool in pending.tools:
            meter.record_tool(tool)
        if duplicates:
            self.metrics.record_self(contract.SELF_SPANS_DUPLICATE, duplicates)
        self.dedup.settle(pending.claimed)
        if stored is not None:
            self.reconcile.add(ledger_pico, metrics_pico)
        if self.forwarder is not None and pending.decoded.full is not None:
            self.forwarder.submit(pending.decoded.full, counted_calls)  # takes the message over
        rejected = sum(pending.rejected.values())
        message = ""
        if rejected:
            message = "; ".join(f"{n} span(s) rejected: {reason}" for reason, n in sorted(pending.rejected.items()))
        return Outcome(rejected=rejected, message=message, counted=counted, duplicates=duplicates)


class Reconciliation:
    """The ledger's and the metrics' cost totals since start, in 10^-12 USD: they must be equal
    (genai_meter_ledger_difference_usd, alerted on when not zero)."""

    def __init__(self) -> None:
        self.ledger_pico = 0
        self.metrics_pico = 0

    def add(self, ledger_pico: int, metrics_pico: int) -> None:
        self.ledger_pico += ledger_pico
        self.metrics_pico += metrics_pico

    @property
    def difference_pico(self) -> int:
        return self.ledger_pico - self.metrics_pico
