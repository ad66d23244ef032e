"""The in-process processor's ledger: every metered call goes to ClickHouse, asynchronously.

`LedgerRecorder.record_call` runs on the thread that ended the span: it only appends to a bounded
queue (no I/O, no waiting). A daemon thread hands the queue to the ClickHouse writer in batches;
the writer's durable local spool keeps what it accepted across an outage or a restart. When the
queue is full (ClickHouse down for long and the spool not keeping up) calls are dropped and
counted in genai_meter_spans_rejected_total{reason="ledger_queue_full"}: an app is never slowed. A
call the ledger can never store (`LedgerRowRejected`) is counted with reason `ledger_row_rejected` and
the rest of its batch is submitted again without it.

Only ClickHouse is written in process: the embedded SQLite ledger belongs to `genai-meter serve`
(one writer per file, same host), so an app pointed at `sqlite://` logs why and writes nothing.
"""

from __future__ import annotations

import logging
import queue
import threading

from genai_meter import contract
from genai_meter.collector_processor.metering import Recorder
from genai_meter.config import Config
from genai_meter.ledger import Entry, LedgerRowRejected, LedgerUnavailable, LedgerUrlError, LedgerWriter, open_writer
from genai_meter.ledger.urls import clickhouse_target
from genai_meter.records import Cost, LLMCall

log = logging.getLogger("genai_meter")

QUEUE_LIMIT = 100_000  # calls waiting for the writer; past it new calls are dropped (and counted)
BATCH = 5000


class LedgerRecorder:
    """A `Recorder` that stores calls in a ClickHouse ledger from a background thread."""

    def __init__(self, writer: LedgerWriter, self_metrics: Recorder) -> None:
        self.writer = writer
        self.self_metrics = self_metrics
        self._queue: queue.Queue[Entry | None] = queue.Queue(QUEUE_LIMIT)
        self._thread = threading.Thread(target=self._run, name="genai-meter-ledger", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, config: Config, url: str | None, self_metrics: Recorder) -> LedgerRecorder | None:
        """The recorder for a `clickhouse://` URL; None (with a log line saying why) for anything else."""
        if not url:
            return None
        try:
            target = clickhouse_target(url)
        except LedgerUrlError as exc:  # the app runs on; the ledger is off
            log.warning("genai-meter: %s; the in-process processor writes no ledger", exc)
            return None
        if target is None:
            log.warning("genai-meter: the in-process processor writes only to a ClickHouse ledger; %s is left to "
                        "`genai-meter serve` (send it the spans, or use a clickhouse:// URL)", url)
            return None
        return cls(open_writer(url, config), self_metrics)

    def record_call(self, call: LLMCall, cost: Cost | None) -> None:
        """Queue the call for the ledger. Never blocks."""
        try:
            self._queue.put_nowait(Entry(call, cost))
        except queue.Full:
            self.self_metrics.record_self(contract.SELF_SPANS_REJECTED, reason="ledger_queue_full")

    def record_skip(self, reason: str) -> None:
        """Skipped spans are not stored."""

    def record_self(self, name: str, amount: float = 1, **labels: str) -> None:
        """Self-metrics live in the metrics store, not the ledger."""

    def close(self, timeout_s: float = 10.0) -> None:
        """Hand over what is queued, then close the writer (its spool keeps what it could not ship)."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        self.writer.close(timeout_s)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._submit(batch)
                    return
                batch.append(item)
            self._submit(batch)

    def _submit(self, batch: list[Entry]) -> None:
        try:
            try:
                self.writer.submit(batch).result(60)
            except LedgerRowRejected as exc:  # calls the ledger can never store: the others go on their own
                log.warning("genai-meter: %d call(s) not stored in the ledger: %s", len(exc.rows) or len(batch),
                            exc.reason)
                self.self_metrics.record_self(contract.SELF_SPANS_REJECTED, len(exc.rows) or len(batch),
                                              reason=contract.REJECT_LEDGER_ROW)
                at_fault = set(exc.rows)
                rest = [e for i, e in enumerate(batch) if i not in at_fault]
                if at_fault and rest:
                    self._submit(rest)
        except (LedgerUnavailable, TimeoutError, OSError) as exc:
            log.warning("genai-meter: %d call(s) not stored in the ledger: %s", len(batch), exc)
            self.self_metrics.record_self(contract.SELF_SPANS_REJECTED, len(batch), reason="ledger_unavailable")
