"""The query planner: which parts of a range come from daily/hourly rollups and which from raw rows."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.ledger import sqlite_writer
from genai_meter.ledger.parts import plan, step_starts
from genai_meter.ledger.sqlite_grouped import planned_parts
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry

NEVER = 2**63 - 1


def test_aligned_middle_from_rollups_edges_from_raw_rows() -> None:
    start, end = T0 + 5, T0 + 3 * DAY_NS + 2 * HOUR_NS + 7
    assert plan(start, end, True, True, NEVER) == [
        ("raw", start, T0 + HOUR_NS), ("hour", T0 + HOUR_NS, T0 + DAY_NS), ("day", T0 + DAY_NS, T0 + 3 * DAY_NS),
        ("hour", T0 + 3 * DAY_NS, T0 + 3 * DAY_NS + 2 * HOUR_NS), ("raw", T0 + 3 * DAY_NS + 2 * HOUR_NS, end)]
    assert plan(T0, T0 + 2 * DAY_NS, True, True, NEVER) == [("day", T0, T0 + 2 * DAY_NS)]
    assert plan(start, end, False, False, NEVER) == [("raw", start, end)]
    assert plan(T0 + 5, T0 + HOUR_NS + 5, True, True, NEVER) == [("raw", T0 + 5, T0 + HOUR_NS + 5)]
    # ClickHouse: rollups only for sealed hours (an hour-aligned watermark), raw rows (FINAL) after
    assert plan(T0, T0 + DAY_NS, True, True, T0 + 5 * HOUR_NS) == [
        ("hour", T0, T0 + 5 * HOUR_NS), ("raw", T0 + 5 * HOUR_NS, T0 + DAY_NS)]


def test_a_watermark_inside_an_hour_reads_that_hour_s_row_and_raw_calls_from_it() -> None:
    w = T0 + 5 * HOUR_NS + 3  # SQLite: rollup_hour holds exactly the calls before w (hour 5's row: [5h, w))
    assert plan(T0, T0 + DAY_NS, True, True, w) == [("hour", T0, T0 + 6 * HOUR_NS), ("raw", w, T0 + DAY_NS)]
    assert plan(T0 + 7, T0 + DAY_NS, True, True, w) == [
        ("raw", T0 + 7, T0 + HOUR_NS), ("hour", T0 + HOUR_NS, T0 + 6 * HOUR_NS), ("raw", w, T0 + DAY_NS)]
    assert plan(T0, w, True, True, w) == [("hour", T0, T0 + 6 * HOUR_NS)]  # the range ends at w: no raw part
    assert plan(T0 + 5 * HOUR_NS, w + 9, True, True, w) == [("hour", T0 + 5 * HOUR_NS, T0 + 6 * HOUR_NS),
                                                             ("raw", w, w + 9)]
    # the partial hour starts before the range: not usable; the watermark after the range end: aligned
    assert plan(T0 + 5 * HOUR_NS + 1, T0 + DAY_NS, True, True, w) == [("raw", T0 + 5 * HOUR_NS + 1, T0 + DAY_NS)]
    assert plan(T0, w - 1, True, True, w) == [("hour", T0, T0 + 5 * HOUR_NS), ("raw", T0 + 5 * HOUR_NS, w - 1)]
    assert plan(T0, T0 + DAY_NS, False, False, w) == [("raw", T0, T0 + DAY_NS)]
    # days: whole days before the day watermark, the hours after it up to and including w's hour
    w2 = T0 + 3 * DAY_NS + 2 * HOUR_NS + 11
    assert plan(T0 + 5, T0 + 4 * DAY_NS, True, True, w2, T0 + 3 * DAY_NS) == [
        ("raw", T0 + 5, T0 + HOUR_NS), ("hour", T0 + HOUR_NS, T0 + DAY_NS), ("day", T0 + DAY_NS, T0 + 3 * DAY_NS),
        ("hour", T0 + 3 * DAY_NS, T0 + 3 * DAY_NS + 3 * HOUR_NS), ("raw", w2, T0 + 4 * DAY_NS)]
    assert plan(T0, T0 + 4 * DAY_NS, True, True, w2, T0 + DAY_NS) == [
        ("day", T0, T0 + DAY_NS), ("hour", T0 + DAY_NS, T0 + 3 * DAY_NS + 3 * HOUR_NS), ("raw", w2, T0 + 4 * DAY_NS)]


def test_a_dimension_with_more_day_rows_than_calls_is_read_from_raw_calls() -> None:
    """Per-field rows are read unless they outnumber the calls of their days (measured: a per-field row
    costs less to group than a raw call, which is grouped per label set and joined to its dimensions)."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE field_day_rows (field TEXT, bucket INTEGER, rows INTEGER, calls INTEGER, "
                 "PRIMARY KEY (field, bucket))")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("CREATE TABLE rollup_day (bucket INTEGER)")
    conn.execute("INSERT INTO rollup_day VALUES (?)", (T0,))
    parts = [("raw", T0 + 5, T0 + DAY_NS), ("day", T0 + DAY_NS, T0 + 4 * DAY_NS), ("raw", T0 + 4 * DAY_NS, T0 + 4 * DAY_NS + 9)]

    def planned(rows_per_day: int, filters: dict[str, list[str]] | None = None) -> list[tuple[str, int, int]]:
        conn.execute("DELETE FROM field_day_rows")
        for day in range(1, 4):
            conn.executemany("INSERT INTO field_day_rows VALUES (?, ?, ?, ?)",
                             [("", T0 + day * DAY_NS, 40, 1000), ("customer", T0 + day * DAY_NS, rows_per_day, 1000)])
        return planned_parts(conn, parts, filters or {}, ["customer"])

    assert planned(900) == parts  # 0.9 rows a call (1M calls, 100k customers): the per-field rows
    assert planned(1001) == [("raw", T0 + 5, T0 + 4 * DAY_NS + 9)]  # one part, from the raw calls
    assert planned(1001, {"customer": ["acme"]}) == parts  # a filter on the field: its index range
    conn.execute("INSERT INTO meta VALUES ('raw_since_ns', ?)", (str(T0 + 2 * DAY_NS),))
    assert planned(1001) == parts  # the raw calls of the range are pruned: the rollups


def test_step_starts_follow_local_calendar() -> None:
    assert step_starts(T0 + 5, T0 + 3 * HOUR_NS, "1h", 0) == [T0, T0 + HOUR_NS, T0 + 2 * HOUR_NS]
    assert step_starts(T0, T0 + 2 * DAY_NS, "1d", 3600) == [T0 - HOUR_NS, T0 + 23 * HOUR_NS, T0 + 47 * HOUR_NS]
    months = step_starts(T0, T0 + 70 * DAY_NS, "1mo", 0)
    assert [(m - T0) // DAY_NS for m in months] == [0, 31, 59]  # Jan, Feb (28 days in 2026), Mar
    weeks = step_starts(T0, T0 + 8 * DAY_NS, "1w", 0)
    assert [(w - T0) // DAY_NS for w in weeks] == [-3, 4]  # 2026-01-01 is a Thursday: weeks start Mondays
    with pytest.raises(ValueError, match="step must be one of"):
        step_starts(T0, T0 + DAY_NS, "2h", 0)  # type: ignore[arg-type]


def test_wal_is_checkpointed_and_truncated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_writer, "WAL_TRUNCATE_BYTES", 1)
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_EVERY_S", 0.05)
    writer = sqlite_writer.SQLiteWriter(tmp_path / "ledger.db", Config())
    writer.submit([entry(i, T0 + i) for i in range(2000)]).result(10)
    deadline = time.monotonic() + 5
    while writer.wal_bytes() > 0:  # the writer thread's TRUNCATE checkpoint empties the WAL
        assert time.monotonic() < deadline, "WAL never truncated"
        time.sleep(0.05)
    writer.close()
