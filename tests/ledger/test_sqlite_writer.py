"""The SQLite writer: exactly once (retries, two processes), durable after the answer (kill -9),
readers beside it, full disk, corrupt and unwritable files, migrations, where the file lives."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from genai_meter.config import Config, LedgerConfig
from genai_meter.ledger import LedgerOpenError, LedgerUnavailable, migrate, open_reader, open_writer, resolve_url
from genai_meter.ledger.sqlite_schema import LATEST, migrate_connection
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from tests.ledger import oracle
from tests.ledger.support import DAY_NS, HOUR_NS, T0, entry

ROOT = Path(__file__).resolve().parents[2]
FAR = T0 + 10_000 * DAY_NS


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def test_retries_and_in_batch_duplicates_are_stored_once(tmp_path: Path) -> None:
    writer = open_writer(_url(tmp_path), Config())
    assert writer.submit([entry(1, T0), entry(2, T0 + 1)]).result(5) == [True, True]
    assert writer.submit([entry(2, T0 + 1), entry(3, T0 + 2), entry(3, T0 + 2)]).result(5) == [False, True, False]
    writer.close()
    writer = open_writer(_url(tmp_path), Config())  # a restart: dedup is durable
    assert writer.submit([entry(1, T0)]).result(5) == [False]
    writer.close()
    reader = open_reader(_url(tmp_path), Config())
    assert reader.totals(T0, FAR, {})[0].calls == 3
    reader.close()


def _writer(url: str, first: int, count: int, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.ledger.writer_proc", url, str(first), str(count), "50", *extra]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_writer_processes_store_each_call_once(tmp_path: Path) -> None:
    url = _url(tmp_path)
    migrate(url, Config())
    procs = [_writer(url, 0, 3000), _writer(url, 1500, 3000)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(int(o.split()[0]) for o in outs) == 4500
    reader = open_reader(url, Config())
    rows = oracle.stored_rows([entry(j, T0 + j * HOUR_NS // 7) for j in range(4500)], Config())
    assert reader.totals(T0, FAR, {}, ["model"]) == oracle.totals(rows, T0, FAR, {}, ["model"])
    reader.close()


@pytest.mark.slow
def test_kill_9_after_the_answer_loses_nothing(tmp_path: Path) -> None:
    url = _url(tmp_path)
    proc = _writer(url, 0, 500, "hold")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "500"
    assert proc.stdout.readline().strip() == "committed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    reader = open_reader(url, Config())
    assert reader.totals(T0, FAR, {})[0].calls == 500
    reader.close()


def test_reader_beside_a_writer_sees_whole_batches(tmp_path: Path) -> None:
    url = _url(tmp_path)
    writer = open_writer(url, Config())
    writer.submit([entry(10**6, T0)]).result(5)
    reader = open_reader(url, Config())
    done = threading.Event()

    def write() -> None:
        for b in range(40):
            writer.submit([entry(b * 25 + j, T0 + HOUR_NS + b * 25 + j) for j in range(25)]).result(10)
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    counts = []
    while not done.is_set():
        counts.append(reader.totals(T0, FAR, {})[0].calls)
        reader.events({}, limit=5)
    thread.join()
    counts.append(reader.totals(T0, FAR, {})[0].calls)
    assert all((c - 1) % 25 == 0 for c in counts) and counts == sorted(counts) and counts[-1] == 1001
    writer.close()
    reader.close()


def test_full_disk_answers_unavailable_and_stores_nothing(tmp_path: Path) -> None:
    url = _url(tmp_path)
    writer = open_writer(url, Config())
    writer.submit([entry(i, T0 + i) for i in range(10)]).result(5)
    writer.close()
    conn = sqlite3.connect(tmp_path / "ledger.db")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    full = SQLiteWriter(tmp_path / "ledger.db", Config(), pragmas=[f"max_page_count={pages + 2}"])
    with pytest.raises(LedgerUnavailable, match="full"):
        full.submit([entry(100 + i, T0 + DAY_NS + i) for i in range(3000)]).result(10)
    assert full.failures == 1
    assert full.submit([entry(5, T0 + 5)]).result(5) == [False]  # still answering
    full.close()
    reader = open_reader(url, Config())
    assert reader.totals(T0, FAR, {})[0].calls == 10
    reader.close()


def test_corrupt_or_unwritable_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "ledger.db"
    bad.write_bytes(b"this is not a database" * 200)
    with pytest.raises(LedgerOpenError, match=str(bad)):
        open_writer(f"sqlite:///{bad}", Config())
    with pytest.raises(LedgerOpenError, match=str(bad)):
        open_reader(f"sqlite:///{bad}", Config())
    blocked = tmp_path / "a-file" / "ledger.db"
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(LedgerOpenError, match=str(blocked)):
        open_writer(f"sqlite:///{blocked}", Config())
    with pytest.raises(LedgerOpenError, match="no ledger here"):
        open_reader(f"sqlite:///{tmp_path / 'missing.db'}", Config())


@pytest.mark.parametrize("version", range(LATEST))
def test_migrations_from_every_earlier_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / "ledger.db"
    conn = sqlite3.connect(path, isolation_level=None)
    if version:
        migrate_connection(conn, path, target=version)
        conn.execute("INSERT INTO labelsets VALUES (1, 's', 'e', 'openai', 'm', 'm', 'chat', 'ok', '', '{}')")
        conn.execute("INSERT INTO prices VALUES (1, '', '', '', '{}')")
        conn.execute("INSERT INTO calls (end_ns, trace_id, span_id, parent_span_id, labelset, conversation, user, "
                     "duration_us, t_input, t_cache_read, t_cache_write, t_output, t_reasoning, c_input, c_cache_read, "
                     "c_cache_write, c_output, c_reasoning, c_request, list_cost, price, unpriced, unmetered, invalid, "
                     "weight_micro) VALUES (?, ?, ?, x'', 1, '', '', 5, 1, 0, 0, 2, 0, 7, 0, 0, 0, 0, 0, 7, 1, 0, '', "
                     "'', 1000000)", (T0, b"\x01" * 16, b"\x02" * 8))
    if version >= 2:  # a re-priced call's history moves with the version-4 key (end time first)
        conn.execute("INSERT INTO price_history (trace_id, span_id, reprice, end_ns, price, unpriced, c_input, "
                     "c_cache_read, c_cache_write, c_output, c_reasoning, c_request, list_cost) "
                     "VALUES (?, ?, 1, ?, 1, 0, 9, 0, 0, 0, 0, 0, 9)", (b"\x01" * 16, b"\x02" * 8, T0))
    conn.close()
    with pytest.raises(LedgerOpenError, match=f"schema version {version}, expected {LATEST}"):
        open_reader(f"sqlite:///{path}", Config())  # readers never migrate
    migrate(f"sqlite:///{path}", Config())
    reader = open_reader(f"sqlite:///{path}", Config())
    rows = reader.events({})
    assert [r.cost_pico["input"] for r in rows.rows] == ([7] if version else [])
    reader.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == LATEST
    history = conn.execute("SELECT end_ns, trace_id, span_id, reprice, c_input FROM price_history").fetchall()
    assert history == ([(T0, b"\x01" * 16, b"\x02" * 8, 1, 9)] if version >= 2 else [])
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'calls_identity'").fetchall() == []
    assert conn.execute("SELECT COUNT(*) FROM late_calls").fetchone()[0] == 0  # version 11: no call held yet
    conn.close()
    writer = open_writer(f"sqlite:///{path}", Config())  # the migrated file takes calls, retries found by key
    assert writer.submit([entry(5, T0 + 5), entry(5, T0 + 5)]).result(5) == [True, False]
    assert writer.submit([entry(5, T0 + 5)]).result(5) == [False]
    writer.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    url = _url(tmp_path)
    migrate(url, Config())
    conn = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    conn.execute("INSERT INTO schema_version VALUES (?, 0)", (LATEST + 1,))
    conn.close()
    for opener in (open_reader, open_writer):
        with pytest.raises(LedgerOpenError, match=f"version {LATEST + 1} is newer"):
            opener(url, Config())


def test_where_the_ledger_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GENAI_METER_LEDGER", raising=False)
    monkeypatch.delenv("GENAI_METER_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = Config()
    assert resolve_url(config, None) == f"sqlite:///{tmp_path / 'state' / 'genai-meter' / 'ledger.db'}"
    monkeypatch.setenv("GENAI_METER_DATA_DIR", str(tmp_path / "data"))
    assert resolve_url(config, None) == f"sqlite:///{tmp_path / 'data' / 'ledger.db'}"
    configured = Config(ledger=LedgerConfig(data_dir=tmp_path / "cfg"))
    assert resolve_url(configured, None) == f"sqlite:///{tmp_path / 'cfg' / 'ledger.db'}"
    configured = Config(ledger=LedgerConfig(url="clickhouse://u:p@h:9000/db", data_dir=tmp_path / "cfg"))
    assert resolve_url(configured, None) == "clickhouse://u:p@h:9000/db"
    monkeypatch.setenv("GENAI_METER_LEDGER", "sqlite:///env.db")
    assert resolve_url(configured, None) == "sqlite:///env.db"
    assert resolve_url(configured, "NONE") is None
    assert resolve_url(configured, "sqlite:////x/y.db") == "sqlite:////x/y.db"


def test_hashing_of_users_and_hashed_dimensions(tmp_path: Path) -> None:
    config = Config()
    writer = open_writer(_url(tmp_path), config)
    writer.submit([entry(1, T0, user="alice@example.com")]).result(5)
    writer.close()
    reader = open_reader(_url(tmp_path), config)
    row = reader.events({}).rows[0]
    assert row.user != "alice@example.com" and len(row.user) == 16
    from genai_meter.exporters.labels import hash_value  # the metric labels' hash: the same value

    assert row.user == hash_value("alice@example.com")
    reader.close()
