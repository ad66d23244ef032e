"""Counting templated calls in bulk (metering.tally) gives what counting each call gives: the same
/metrics samples (histogram sums to the last bits they may round differently) and the same ledger
rows and rollups, over benchmark requests (many label sets, repeated ones, cache reads or not) with
the ledger on and off, retries included."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from benchmarks.mixed_bodies import mixed_body
from benchmarks.otlp_bodies import Stamper, template_body
from genai_meter.collector_processor.metering import build_meter
from genai_meter.collector_processor.metering.meter import Meter
from genai_meter.collector_processor.metering.tally import Tally
from genai_meter.collector_processor.receiver.decode import MEDIA_PROTOBUF, decode
from genai_meter.collector_processor.receiver.dedup import SeenSpans
from genai_meter.collector_processor.receiver.ingest import Ingestor
from genai_meter.config import Config
from genai_meter.conventions import Conventions
from genai_meter.exporters import UsageMetrics
from genai_meter.ledger.sqlite_rollups import seal
from genai_meter.ledger.sqlite_schema import open_write
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from genai_meter.pricing import PriceBook
from genai_meter.records import SpanRecord

CONFIG = Config()


def _ingestor(tmp: Path | None, *, bulk: bool) -> tuple[Ingestor, UsageMetrics, SQLiteWriter | None]:
    metrics = UsageMetrics(CONFIG, serve=True)
    meter = (build_meter(CONFIG, [metrics]) if bulk else
             Meter(CONFIG, [metrics], conventions=Conventions(CONFIG), prices=PriceBook.from_config(CONFIG),
                   templates=False))
    meter.bulk = bulk  # with or without the C accelerator
    writer = SQLiteWriter(tmp / "ledger.db", CONFIG) if tmp is not None else None
    ingestor = Ingestor(meter, metrics, SeenSpans(CONFIG.limits.dedup_window_seconds, CONFIG.limits.dedup_max_entries),
                        ledger=writer)
    return ingestor, metrics, writer


def _bodies() -> list[bytes]:
    bodies = []
    for share, seed in ((1.0, 1), (0.1, 2), (1.0, 3)):
        stamper = Stamper(template_body(share, seed=seed))
        bodies.extend(stamper.bodies(4))
    bodies.extend(Stamper(mixed_body()).bodies(3))  # tiers, legacy keys, several scopes, audio tokens
    return bodies + bodies[:3]  # resent requests: duplicates


def _same_samples(bulk: UsageMetrics, each: UsageMetrics) -> None:
    a, b = bulk.samples(), each.samples()
    assert a.keys() == b.keys()
    for key, value in a.items():
        if "_sum" in str(key):
            assert math.isclose(value, b[key], rel_tol=1e-12), key
        else:
            assert value == b[key], key


@pytest.mark.slow
def test_bulk_counting_equals_counting_each_call_with_the_ledger(tmp_path: Path) -> None:
    (tmp_path / "bulk").mkdir()
    (tmp_path / "each").mkdir()
    bulk, bulk_metrics, bulk_writer = _ingestor(tmp_path / "bulk", bulk=True)
    each, each_metrics, each_writer = _ingestor(tmp_path / "each", bulk=False)
    counted = 0
    for body in _bodies():
        got = bulk.export(decode(body, MEDIA_PROTOBUF))
        want = each.export(decode(body, MEDIA_PROTOBUF))
        assert got == want
        counted += got.counted
    assert counted > 3000
    assert bulk.reconcile.difference_pico == 0 and bulk.reconcile.ledger_pico == each.reconcile.ledger_pico
    _same_samples(bulk_metrics, each_metrics)
    assert bulk_writer is not None and each_writer is not None
    bulk_writer.close()
    each_writer.close()
    until = time.time_ns() + 3600 * 10**9
    for side in ("bulk", "each"):  # the hourly rollups of calls this recent are sealed a minute later
        conn = open_write(tmp_path / side / "ledger.db", 5.0)
        while seal(conn, until)[0] < until:
            pass
        conn.close()
    for table in ("calls", "rollup_hour", "labelsets", "prices"):
        rows = [sqlite3.connect(tmp_path / side / "ledger.db").execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
                .fetchall() for side in ("bulk", "each")]
        assert rows[0] == rows[1], table
        assert rows[0], table


def test_bulk_counting_equals_counting_each_call_without_the_ledger() -> None:
    bulk, bulk_metrics, _ = _ingestor(None, bulk=True)
    each, each_metrics, _ = _ingestor(None, bulk=False)
    for body in _bodies():
        assert bulk.export(decode(body, MEDIA_PROTOBUF)) == each.export(decode(body, MEDIA_PROTOBUF))
    _same_samples(bulk_metrics, each_metrics)
    assert bulk.meter.templates is not None and len(bulk.meter.templates.entries) > 100


class _BrokenTally(Tally):
    """Takes spans until its third run, then fails: a defect in the bulk path."""

    runs = 0

    def run(self, spans: Sequence[SpanRecord], start: int) -> int:
        _BrokenTally.runs += 1
        if _BrokenTally.runs > 2:
            raise RuntimeError("defect")
        return super().run(spans, start)


def test_a_defect_in_bulk_counting_is_counted_and_every_span_counted_one_by_one() -> None:
    bulk, bulk_metrics, _ = _ingestor(None, bulk=True)
    each, each_metrics, _ = _ingestor(None, bulk=False)
    bodies = _bodies()[:4]
    for body in bodies[:2]:  # templates learned
        bulk.export(decode(body, MEDIA_PROTOBUF))
        each.export(decode(body, MEDIA_PROTOBUF))
    tally = bulk.meter.tally()
    assert tally is not None
    broken = _BrokenTally(**{name: getattr(tally, name) for name in (
        "templates", "plans", "conventions", "meter", "parents", "max_parents", "max_tokens", "weight_sampled",
        "duration_bounds", "ttft_bounds")})
    bulk.meter.tally = lambda: broken  # type: ignore[method-assign]
    for body in bodies[2:]:
        assert bulk.export(decode(body, MEDIA_PROTOBUF)) == each.export(decode(body, MEDIA_PROTOBUF))
    assert bulk_metrics.get("genai_meter_processing_errors_total") == _BrokenTally.runs - 2, _BrokenTally.runs
    errors = "genai_meter_processing_errors_total"
    a = {k: v for k, v in bulk_metrics.samples().items() if errors not in str(k) and "_sum" not in str(k)}
    b = {k: v for k, v in each_metrics.samples().items() if errors not in str(k) and "_sum" not in str(k)}
    assert a == b
