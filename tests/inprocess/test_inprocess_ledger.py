"""The in-process processor's ledger: calls are queued on the span's thread and stored by a
background thread; an app pointed at the embedded SQLite ledger writes nothing (serve owns it)."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from genai_meter.collector_processor import CostSpanProcessor
from genai_meter.collector_processor.inprocess.ledger_recorder import LedgerRecorder
from genai_meter.config import Config
from genai_meter.exporters import UsageMetrics
from genai_meter.ledger import migrate, open_reader, open_writer
from genai_meter.money import from_pico
from tests.support.otlp import gpt4o_cost


def test_calls_are_stored_by_a_background_thread_exactly(tmp_path: Path) -> None:
    config = Config()
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrate(url, config)
    metrics = UsageMetrics(config)
    recorder = LedgerRecorder(open_writer(url, config), metrics)  # any writer; apps get ClickHouse's
    processor = CostSpanProcessor(config, metrics=metrics, recorders=[recorder])
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("app")
    for i in range(50):
        with tracer.start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 1000 + i, "gen_ai.usage.output_tokens": 10,
                "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.conversation.id": "c-1"}):
            pass
    recorder.close()
    reader = open_reader(url, config)
    try:
        totals = reader.totals(0, 2**62, {})[0]
        assert totals.calls == 50
        assert from_pico(totals.cost_total_pico) == sum((gpt4o_cost(1000 + i, 10) for i in range(50)), Decimal(0))
        assert [row.conversation for row in reader.conversation("c-1", {})] == ["c-1"] * 50
    finally:
        reader.close()
        provider.shutdown()


def test_an_app_pointed_at_sqlite_writes_nothing_and_says_why(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="genai_meter"):
        processor = CostSpanProcessor(Config(), ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}")
    assert processor.ledger is None
    assert "only to a ClickHouse ledger" in caplog.text
    assert not (tmp_path / "ledger.db").exists()
