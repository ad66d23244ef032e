"""The hourly rollups behind a watermark W: the write path only inserts calls, a seal pass rolls the
calls before W up in SQL, calls that end before W (late) are rolled up by their batch. Every rollup
row equals the raw sums, the seal pass makes the rows the per-batch path makes, and every answer
equals the oracle wherever W lies (inside an hour too)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from genai_meter.config import Config, LedgerConfig, PricingConfig
from genai_meter.ledger import Entry, open_reader, prune, reprice, sqlite_rollups, sqlite_writer
from genai_meter.ledger.model import Filters, LedgerReader
from genai_meter.ledger.parts import Table
from genai_meter.ledger.query import AggRow, Reader
from genai_meter.ledger.rows import MONEY_SUMS, SUM_NAMES, Row
from genai_meter.ledger.sqlite_reader import SQLiteSource
from genai_meter.ledger.sqlite_rollups import days_sealed_until, hours_sealed_until, seal, seal_days
from genai_meter.ledger.sqlite_schema import HOUR_MARK, LATEST, open_write, rollup_columns, schema_version
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from genai_meter.pricing import PriceBook
from tests.ledger import oracle
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry, hour_totals, make_call, random_entries

FAR = T0 + 40 * DAY_NS
NEAR_2_63 = "9223372.030000000"  # 10^-12 USD: one call's cost (and list cost) just below 2^63
RollupRows = dict[tuple[int, int], tuple[int, ...]]


@pytest.fixture(autouse=True)
def writer_seals_before_t0(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer thread's own seal passes stop 30 days before T0: these tests move W themselves."""
    monkeypatch.setattr(sqlite_writer, "SEAL_GRACE_S", time.time() - (T0 - 30 * DAY_NS) / 10**9)


def _write(path: Path, batches: Iterable[list[Entry]]) -> None:
    writer = SQLiteWriter(path, Config())
    for batch in batches:
        writer.submit(batch).result(30)
    writer.close()


def _seal_all(path: Path, until: int) -> tuple[int, int]:
    conn = open_write(path, 5.0)
    passes = 0
    while (marks := seal(conn, until))[0] < until or marks[1] < until - until % DAY_NS:
        passes += 1
        assert passes < 10_000
    conn.close()
    return marks


def _set_w(path: Path, w: int) -> None:
    """Move W (no calls rolled up): a file whose later calls are all late."""
    conn = open_write(path, 5.0)
    conn.execute("UPDATE meta SET value = ? WHERE key = ?", (str(w), HOUR_MARK))
    conn.close()


def _table(path: Path, table: str) -> RollupRows:
    """The rows of `table`; for rollup_hour, after checking that the hourly totals equal its sums."""
    if table == "rollup_hour":
        total, summed = hour_totals(path)
        assert total == summed
    conn = sqlite3.connect(path)
    rows = conn.execute(f"SELECT * FROM {table}").fetchall()
    conn.close()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _expected_hours(path: Path, rows: Sequence[Row], before: int) -> RollupRows:
    """rollup_hour as it must be for the stored `rows` that end before `before` (money as normalised
    hi/lo pairs), computed in Python."""
    conn = sqlite3.connect(path)
    ids = {(tuple(r[1:-1]), r[-1]): r[0] for r in conn.execute(
        "SELECT id, service, environment, provider, model, request_model, operation, status, error_type, dims "
        "FROM labelsets")}
    conn.close()
    sums: dict[tuple[int, int], list[int]] = {}
    for row in rows:
        if row.end_ns < before:
            ls = ids[(row.labels, json.dumps(dict(row.dims), sort_keys=True, separators=(",", ":")))]
            acc = sums.setdefault((row.end_ns - row.end_ns % HOUR_NS, ls), [0] * len(SUM_NAMES))
            for i, v in enumerate(row.sums()):
                acc[i] += v
    out: RollupRows = {}
    for key, values in sums.items():
        cols: list[int] = []
        for name, v in zip(SUM_NAMES, values):
            cols += [v >> 32, v & 0xFFFFFFFF] if name in MONEY_SUMS else [v]
        out[key] = tuple(cols)
    return out


def _big_entries() -> list[Entry]:
    """Calls each costing just below 2^63 10^-12 USD, many in one (hour, label set): the sums pass 2^63."""
    return [entry(50_000 + i, T0 + 3 * HOUR_NS + i * 10**9, usd=NEAR_2_63, model=["gpt-4o", "claude"][i % 2],
                  status="ok" if i % 5 else "error") for i in range(400)]


def _batches() -> list[list[Entry]]:
    data = random_entries(11, 3000, T0, 20 * DAY_NS) + _big_entries()
    return [data[i:i + 700] for i in range(0, len(data), 700)]


def test_sealed_rollups_equal_the_raw_sums_and_the_per_batch_rollups(tmp_path: Path) -> None:
    sealed, per_batch = tmp_path / "sealed.db", tmp_path / "per_batch.db"
    _write(sealed, _batches())  # raw rows only: W is before T0
    assert _table(sealed, "rollup_hour") == {}
    _seal_all(sealed, FAR)
    _set_w(per_batch, FAR)  # every call late: rolled up per batch in Python, as the writer always did before
    _write(per_batch, _batches())
    rows = oracle.stored_rows([e for b in _batches() for e in b], Config())
    expected = _expected_hours(sealed, rows, FAR)
    got = _table(sealed, "rollup_hour")
    assert got == expected
    hi = rollup_columns().index("c_input_hi")
    assert max((v[hi] << 32) + v[hi + 1] for v in got.values()) > 2**64  # the hi/lo sums past 2^63
    assert _table(per_batch, "rollup_hour") == expected  # the same label-set ids: same batches, same order
    _seal_all(per_batch, FAR)
    assert _table(sealed, "rollup_day") == _table(per_batch, "rollup_day")
    assert _table(sealed, "rollup_field_day") == _table(per_batch, "rollup_field_day")


def test_late_calls_land_in_the_rollups_at_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    first = random_entries(21, 1500, T0, 20 * DAY_NS)
    _write(path, [first])
    w = T0 + 12 * DAY_NS + 5 * HOUR_NS + 123_456  # inside an hour
    assert _seal_all(path, w) == (w, T0 + 12 * DAY_NS)
    late = [entry(90_000 + i, T0 + i * (DAY_NS // 7) + 11, customer="zeta", status=["ok", "error"][i % 2])
            for i in range(7 * 12 + 5)]  # before and after the day mark, some after W
    late.append(entry(99_999, w - 1, usd=NEAR_2_63))  # in W's own hour
    _write(path, [late])
    rows = oracle.stored_rows(first + late, Config())
    assert _table(path, "rollup_hour") == _expected_hours(path, rows, w)
    conn = sqlite3.connect(path)
    day_calls = conn.execute("SELECT SUM(calls) FROM rollup_day").fetchone()[0]
    field_calls = conn.execute("SELECT SUM(calls) FROM rollup_field_day WHERE field = ''").fetchone()[0]
    conn.close()
    assert day_calls == field_calls == sum(1 for r in rows if r.end_ns < T0 + 12 * DAY_NS)


def _answers(reader: LedgerReader, rows: list[Row]) -> None:
    """Totals and 1h/1d series of `reader` equal the oracle's over ranges around the marks."""
    ranges = [(T0, FAR), (T0 + 7, T0 + 12 * DAY_NS + 5 * HOUR_NS + 999), (T0 + 12 * DAY_NS + 5 * HOUR_NS, FAR),
              (T0 + 3 * HOUR_NS, T0 + 12 * DAY_NS + 6 * HOUR_NS), (T0 + DAY_NS + 17, T0 + 19 * DAY_NS + 5)]
    for a, b in ranges:
        for filters, group_by in [({}, []), ({}, ["model"]), ({"customer": ["acme"]}, ["status"])]:
            assert reader.totals(a, b, filters, group_by) == oracle.totals(rows, a, b, filters, group_by), (a, b)
        for step in ("1h", "1d"):
            series = reader.series(a, b, step, {}, ["model"])
            for key, points in series.items():
                for point in points:
                    stop = point.start_ns + (HOUR_NS if step == "1h" else DAY_NS)
                    want = oracle.totals(rows, max(a, point.start_ns), min(b, stop), {"model": list(key)}, ["model"])
                    assert [point.totals] == want, (a, b, step, point.start_ns)
            assert sum(p.totals.calls for ps in series.values() for p in ps) == \
                oracle.totals(rows, a, b, {})[0].calls


def test_reader_answers_with_the_watermark_inside_an_hour_before_and_after_sealing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    data = random_entries(31, 2500, T0, 20 * DAY_NS) + _big_entries()
    _write(path, [data])
    rows = oracle.stored_rows(data, Config())
    reader = open_reader(url, Config())
    _answers(reader, rows)  # W before T0: raw calls only
    w = T0 + 12 * DAY_NS + 5 * HOUR_NS + 17 * 60 * 10**9 + 3
    _seal_all(path, w)
    assert reader.source.rollups_before_ns() == (w, T0 + 12 * DAY_NS)  # type: ignore[attr-defined]
    _answers(reader, rows)
    _seal_all(path, FAR)
    _answers(reader, rows)
    reader.close()


class SealingSource(SQLiteSource):
    """A source beside which a seal pass moves W right after the first aggregate of each answer (the
    Python merging path), or right after the answer read W (the one-statement path)."""

    def __init__(self, path: Path, until: int) -> None:
        super().__init__(path, Config())
        self.write = open_write(path, 5.0)
        self.until = until

    def aggregate(self, table: Table, start_ns: int, end_ns: int, filters: Filters, group_by: Sequence[str],
                  by_time: bool) -> Iterable[AggRow]:
        rows = super().aggregate(table, start_ns, end_ns, filters, group_by, by_time)
        self._seal()
        return rows

    def rollups_before_ns(self) -> tuple[int, int]:
        marks = super().rollups_before_ns()
        self._seal()
        return marks

    def _seal(self) -> None:
        seal(self.write, self.until)
        self.until += HOUR_NS // 7


def test_a_seal_pass_during_a_query_counts_no_call_twice(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    data = random_entries(41, 2000, T0, 10 * DAY_NS)
    _write(path, [data])
    w = T0 + 4 * DAY_NS + 2 * HOUR_NS + 5
    _seal_all(path, w)
    rows = oracle.stored_rows(data, Config())
    source = SealingSource(path, w + HOUR_NS // 3)
    reader = Reader(source)
    for _ in range(3):
        assert reader.totals(T0, FAR, {}, ["model"]) == oracle.totals(rows, T0, FAR, {}, ["model"])
    assert source.rollups_before_ns()[0] > w + HOUR_NS // 3
    source.write.close()
    reader.close()


@pytest.mark.parametrize("day_mark", [T0 + 10 * DAY_NS, T0 + 24 * DAY_NS])
def test_migration_from_version_4_keeps_every_answer(tmp_path: Path, day_mark: int) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    first = random_entries(51, 2000, T0, 20 * DAY_NS)
    _set_w(path, FAR)  # a version-4 file: every call rolled up by its batch, whole days sealed
    _write(path, [first[:1000], first[1000:]])
    conn = open_write(path, 5.0)
    while seal_days(conn, day_mark) < day_mark:
        pass
    conn.execute("DELETE FROM meta WHERE key = ?", (HOUR_MARK,))
    conn.execute("DELETE FROM schema_version WHERE version >= 5")  # the later steps may run again
    assert schema_version(conn) == 4
    conn.close()
    last = max(e.call.end_ns for e in first)
    more = [entry(70_000 + i, T0 + 20 * DAY_NS + i * HOUR_NS + 3, customer="acme") for i in range(150)]
    _write(path, [more])  # migrates: W = max(the last call's end + 1, the day mark)
    conn = open_write(path, 5.0)
    w = hours_sealed_until(conn)
    assert (schema_version(conn), w, days_sealed_until(conn)) == (LATEST, max(last + 1, day_mark), day_mark)
    conn.close()
    rows = oracle.stored_rows(first + more, Config())
    assert _table(path, "rollup_hour") == _expected_hours(path, rows, w)
    reader = open_reader(url, Config())
    _answers(reader, rows)
    _seal_all(path, FAR)
    _answers(reader, rows)
    reader.close()


def test_a_seal_pass_is_bounded_and_passes_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_rollups, "SEAL_ROWS_PER_PASS", 100)
    path = tmp_path / "ledger.db"
    data = [entry(i, T0 + i * 10**9 // 3, model=["a", "b", "c"][i % 3]) for i in range(1000)]
    _write(path, [data])
    conn = open_write(path, 5.0)
    marks: list[int] = []
    while not marks or marks[-1] < FAR:
        w, days = seal(conn, FAR)
        assert days <= w  # only days wholly before W are sealed
        marks.append(w)
        calls = conn.execute("SELECT COALESCE(SUM(calls), 0) FROM rollup_hour").fetchone()[0]
        assert calls == sum(1 for e in data if e.call.end_ns < marks[-1])  # exactly the calls before W
        assert calls == min(100 * len(marks), 1000)  # 100 calls a pass, the last reaches the end
    while seal_days(conn, FAR) < FAR - FAR % DAY_NS:
        pass
    by_day = "SELECT bucket - bucket % {}, labelset, SUM(calls), SUM(t_input) FROM {} GROUP BY 1, 2"
    assert conn.execute(by_day.format(DAY_NS, "rollup_day")).fetchall() == \
        conn.execute(by_day.format(DAY_NS, "rollup_hour")).fetchall()
    conn.close()
    assert len(marks) == 10 and marks == sorted(set(marks)) and marks[-1] == FAR


def test_the_writer_seals_a_backlog_back_to_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_rollups, "SEAL_ROWS_PER_PASS", 100)
    monkeypatch.setattr(sqlite_writer, "SEAL_GRACE_S", 0.0)
    monkeypatch.setattr(sqlite_writer, "SEAL_EVERY_S", 3600.0)
    path = tmp_path / "ledger.db"
    data = random_entries(61, 2000, T0, 3 * DAY_NS)
    writer = SQLiteWriter(path, Config())
    writer.submit(data).result(30)
    conn = sqlite3.connect(path)
    deadline = time.monotonic() + 20
    while int(conn.execute("SELECT value FROM meta WHERE key = ?", (HOUR_MARK,)).fetchone()[0]) < T0 + 3 * DAY_NS:
        assert time.monotonic() < deadline, "the backlog was not sealed"
        time.sleep(0.05)
    conn.close()
    writer.close()
    assert _table(path, "rollup_hour") == _expected_hours(path, oracle.stored_rows(data, Config()), FAR)


def test_prune_rolls_up_the_calls_it_deletes(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    data = random_entries(71, 1500, T0, 20 * DAY_NS)
    _write(path, [data])  # W before T0: nothing rolled up
    config = Config(ledger=LedgerConfig(retention_days=10, rollup_retention_days=1000))
    assert prune(url, config, now_ns=T0 + 20 * DAY_NS) > 0
    conn = open_write(path, 5.0)
    w = hours_sealed_until(conn)
    first_raw = conn.execute("SELECT MIN(end_ns) FROM calls").fetchone()[0]
    conn.close()
    assert T0 + 10 * DAY_NS - HOUR_NS < w <= first_raw
    rows = oracle.stored_rows(data, Config())
    assert _table(path, "rollup_hour") == _expected_hours(path, rows, w)
    reader = open_reader(url, config)
    assert reader.totals(T0, FAR, {}, ["model"]) == oracle.totals(rows, T0, FAR, {}, ["model"])
    reader.close()


def test_repricing_corrects_only_the_rolled_up_calls(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    book = PriceBook.from_config(Config())
    calls = [make_call(i, T0 + i * (DAY_NS // 20) + i, tokens=(1000 + i, 0, 0, 300, 0)) for i in range(300)]
    _write(path, [[Entry(c, book.cost(c)) for c in calls]])
    w = T0 + 7 * DAY_NS + 3 * HOUR_NS + 5
    _seal_all(path, w)
    (tmp_path / "prices.yaml").write_text("- provider: openai\n  model: gpt-4o\n  discount_percent: 15\n")
    config = Config(pricing=PricingConfig(overrides=tmp_path / "prices.yaml"))
    new_book = PriceBook.from_config(config)
    assert reprice(url, config, T0 + 2 * DAY_NS + 1, FAR, dry_run=False).changed > 0
    expected = [Entry(c, new_book.cost(c) if c.end_ns >= T0 + 2 * DAY_NS + 1 else book.cost(c),
                      book.cost(c) if c.end_ns >= T0 + 2 * DAY_NS + 1 else None) for c in calls]
    rows = oracle.stored_rows(expected, config)
    assert _table(path, "rollup_hour") == _expected_hours(path, rows, w)
    _seal_all(path, FAR)
    assert _table(path, "rollup_hour") == _expected_hours(path, rows, FAR)
    reader = open_reader(url, config)
    assert reader.totals(T0, FAR, {}) == oracle.totals(rows, T0, FAR, {})
    reader.close()


def test_a_writer_of_an_earlier_version_cannot_add_rollups_twice(tmp_path: Path) -> None:
    """A version-4 writer still running beside a migrated file upserts its batches into rollup_hour
    itself (which the seal pass would add again): that write fails now, so nothing counts twice."""
    path = tmp_path / "ledger.db"
    _write(path, [[entry(1, T0 + 5)]])
    older = sqlite3.connect(path, isolation_level=None)  # a connection without this version's function
    older.execute("BEGIN IMMEDIATE")
    for table in ("rollup_hour", "rollup_day"):
        with pytest.raises(sqlite3.OperationalError, match="genai_meter_rollup_writer_v5"):
            older.execute(f"INSERT INTO {table} (bucket, labelset, {', '.join(rollup_columns())}) VALUES "
                          f"({', '.join('0' * (len(rollup_columns()) + 2))})")
    older.execute("ROLLBACK")
    older.close()
    conn = open_write(path, 5.0)  # this version's writers (seal, late calls, corrections) still can
    assert seal(conn, FAR)[0] == FAR
    conn.close()
    assert sum(v[0] for v in _table(path, "rollup_hour").values()) == 1
