"""The in-process ledger path: a call the ledger can never store is counted in
rejected{ledger_row_rejected} and the rest of its batch is stored; an unsupported ledger URL leaves the
app running with the ledger off (a warning naming the URL), never an exception in the app."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from genai_meter import contract
from genai_meter.collector_processor import CostSpanProcessor
from genai_meter.collector_processor.inprocess.ledger_recorder import LedgerRecorder
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.ledger.clickhouse_writer import ClickHouseWriter
from tests.ledger.chdb_harness import new_database
from tests.ledger.support import T0, entry


def test_a_call_the_ledger_cannot_store_is_counted_and_the_batch_goes_on(tmp_path: Path) -> None:
    config = Config()
    executor, db = new_database(config)
    metrics = UsageMetrics(config)
    recorder = LedgerRecorder(ClickHouseWriter(lambda: executor, db, config, tmp_path / "spool"), metrics)
    for i in range(10):
        e = entry(i, T0 + i)
        call = dataclasses.replace(e.call, end_ns=2**63) if i == 4 else e.call
        recorder.record_call(call, e.cost)
    recorder.close()
    assert executor.query(f"SELECT count(), min(end_ns), max(end_ns) FROM {db}.calls FINAL")[0] == (9, T0, T0 + 9)
    assert metrics.get(contract.SELF_SPANS_REJECTED, reason=contract.REJECT_LEDGER_ROW) == 1


def test_an_unsupported_ledger_url_leaves_the_app_running(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="genai_meter"):
        processor = CostSpanProcessor(Config(), ledger_url="postgres://app:secret@db/usage")
    assert processor.ledger is None
    assert "unsupported ledger URL scheme 'postgres'" in caplog.text and "secret" not in caplog.text
    processor.shutdown()
