"""Where a ledger may live: every malformed or unsupported URL is a one-line error naming it (the
`ledger` command exits 2, `serve` too, with no traceback); a SQLite file of another application is
refused and left as it was; a ledger file moved away while readers and a writer run makes them answer
LedgerUnavailable (naming the path) instead of reading or writing the moved file, the writer reports
itself unhealthy, and both recover when the file is back."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from genai_meter.cli import main as cli_main
from genai_meter.config import Config
from genai_meter.ledger import LedgerOpenError, LedgerUnavailable, open_reader, open_writer
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from tests.ledger.support import DAY_NS, T0, entry, ledger_config

FAR = T0 + 1000 * DAY_NS
BAD_URLS = {
    "postgres://app:secret@db:5432/usage": "unsupported ledger URL scheme 'postgres'",
    "file:///var/lib/ledger.db": "unsupported ledger URL scheme 'file'",
    "sqlite://host/ledger.db": "names no host",
    "sqlite:relative.db": "three slashes",
    "sqlite:///": "names no file",
    "sqlite:///x.db?mode=ro": "no query",
    "clickhouse://": "needs a host",
    "clickhouse://h:port/db": "port must be a number",
    "clickhouse://h:8123/bad-name": "database name",
}


@pytest.mark.parametrize("url", sorted(BAD_URLS))
def test_a_malformed_or_unsupported_url_is_a_one_line_error(url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=BAD_URLS[url].replace("(", r"\(")):
        open_writer(url, Config())
    assert cli_main(["ledger", "stats", "--ledger", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and BAD_URLS[url] in err and "secret" not in err
    assert cli_main(["serve", "--ledger", url, "--metrics-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                     "--grpc-listen", "127.0.0.1:0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and BAD_URLS[url] in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no file made with the URL's text as its name


def test_the_url_scheme_is_case_insensitive(tmp_path: Path) -> None:
    writer = open_writer(f"SQLITE:///{tmp_path / 'ledger.db'}", Config())
    writer.submit([entry(1, T0)]).result(5)
    writer.close()
    reader = open_reader(f"Sqlite:///{tmp_path / 'ledger.db'}", Config())
    assert reader.totals(T0, FAR, {})[0].calls == 1
    reader.close()


def _tables(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    finally:
        conn.close()


def test_a_sqlite_file_of_another_application_is_refused_and_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    conn.commit()
    conn.close()
    for opener in (open_writer, open_reader):
        with pytest.raises(LedgerOpenError, match=f"{other}: not a genai-meter ledger.*users"):
            opener(f"sqlite:///{other}", Config())
    assert _tables(other) == ["users"]
    conn = sqlite3.connect(other)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL either
    conn.close()
    ledger = tmp_path / "ledger.db"
    open_writer(f"sqlite:///{ledger}", Config()).close()
    conn = sqlite3.connect(ledger)
    conn.execute("CREATE TABLE notes (t TEXT)")  # a ledger with a table of someone else's
    conn.commit()
    conn.close()
    with pytest.raises(LedgerOpenError, match="not the ledger's \\(notes\\)"):
        open_writer(f"sqlite:///{ledger}", Config())


def test_a_ledger_file_moved_away_under_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    writer = open_writer(url, Config())
    writer.submit([entry(i, T0 + i) for i in range(10)]).result(5)
    writer.close()
    reader = open_reader(url, Config())
    assert reader.totals(T0, FAR, {})[0].calls == 10
    path.rename(tmp_path / "moved.db")
    for query in (lambda: reader.totals(T0, FAR, {}), lambda: reader.events({}), reader.coverage):
        with pytest.raises(LedgerUnavailable) as caught:
            query()
        assert str(path) in str(caught.value) and "gone" in str(caught.value)
        assert caught.value.kind == "file_gone"  # type: ignore[attr-defined]
    with pytest.raises(LedgerUnavailable, match="no ledger here"):  # a new thread's reader, alike
        open_reader(url, Config())
    (tmp_path / "moved.db").rename(path)
    assert reader.totals(T0, FAR, {})[0].calls == 10
    shutil.copy(path, tmp_path / "copy.db")  # a restored copy with one call more, put in its place
    writer = open_writer(f"sqlite:///{tmp_path / 'copy.db'}", Config())
    writer.submit([entry(100, T0 + 100)]).result(5)
    writer.close()
    os.replace(tmp_path / "copy.db", path)
    assert reader.totals(T0, FAR, {})[0].calls == 11  # the reader follows the file now at the path
    reader.close()


def _wait(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_writer_whose_file_moved_away_refuses_calls_until_it_is_back(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    writer = SQLiteWriter(path, Config())
    try:
        assert writer.submit([entry(1, T0)]).result(5) == [True]
        assert writer.healthy() and writer.last_error is None
        path.rename(tmp_path / "moved.db")
        assert not writer.healthy() and "gone" in (writer.last_error or "")
        with pytest.raises(LedgerUnavailable, match="gone"):
            writer.submit([entry(2, T0 + 1)]).result(5)
        (tmp_path / "moved.db").rename(path)
        assert _wait(writer.healthy)  # the writer's probe, with no traffic
        assert writer.submit([entry(2, T0 + 1)]).result(5) == [True]
    finally:
        writer.close()
    reader = open_reader(f"sqlite:///{path}", Config())
    assert reader.totals(T0, FAR, {})[0].calls == 2
    reader.close()


def test_a_writer_is_unhealthy_while_its_commits_fail_and_recovers_without_traffic(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    writer = SQLiteWriter(path, ledger_config(busy_timeout_seconds=0.2))
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        writer.submit([entry(1, T0)]).result(5)
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(LedgerUnavailable):
            writer.submit([entry(2, T0 + 1)]).result(5)
        assert not writer.healthy() and "locked" in (writer.last_error or "")
        time.sleep(1.5)
        assert not writer.healthy()  # its probes fail while the lock is held
        holder.execute("ROLLBACK")
        assert _wait(writer.healthy)
    finally:
        holder.close()
        writer.close()
