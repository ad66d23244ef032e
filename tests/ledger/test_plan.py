"""The query planner: which parts of a range come from daily/hourly rollups and which from raw rows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.ledger import sqlite_writer
from genai_meter.ledger.parts import plan, step_starts
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
