"""SQLite daily rollups: sealed from hourly rows for whole days, late calls into sealed days added
directly; every answer stays equal to the raw sums."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger import Entry, open_reader
from genai_meter.ledger.sqlite_rollups import days_sealed_until, seal_days
from genai_meter.ledger.sqlite_schema import open_write
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from tests.ledger import oracle
from tests.ledger.support import DAY_NS, T0, random_entries


def _rollup_totals(path: Path, table: str) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    calls, hi, lo = conn.execute(f"SELECT SUM(calls), SUM(c_input_hi), SUM(c_input_lo) FROM {table}").fetchone()
    conn.close()
    return calls, (hi << 32) + lo


def test_sealing_days_and_late_calls_keep_every_answer_exact(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    first = random_entries(3, 1500, T0, 20 * DAY_NS)
    late = [Entry(replace(e.call, trace_id=(10**6 + i).to_bytes(16, "big")), e.cost)
            for i, e in enumerate(random_entries(4, 600, T0, 20 * DAY_NS))]
    writer = SQLiteWriter(path, Config())
    writer.submit(first).result(30)
    writer.close()
    conn = open_write(path, 5.0)
    while days_sealed_until(conn) < T0 + 21 * DAY_NS:
        seal_days(conn, T0 + 21 * DAY_NS + 5)
    assert seal_days(conn, T0 + 21 * DAY_NS + 5) == T0 + 21 * DAY_NS  # idempotent
    conn.close()
    assert _rollup_totals(path, "rollup_day") == _rollup_totals(path, "rollup_hour")
    writer = SQLiteWriter(path, Config())
    writer.submit(late).result(30)  # calls for days already sealed
    writer.close()
    assert _rollup_totals(path, "rollup_day") == _rollup_totals(path, "rollup_hour")
    rows = oracle.stored_rows(first + late, Config())
    reader = open_reader(f"sqlite:///{path}", Config())
    for a, b in [(T0, T0 + 25 * DAY_NS), (T0 + DAY_NS, T0 + 9 * DAY_NS), (T0 + 7, T0 + 19 * DAY_NS + 3)]:
        assert reader.totals(a, b, {}, ["model"]) == oracle.totals(rows, a, b, {}, ["model"])
    reader.close()
