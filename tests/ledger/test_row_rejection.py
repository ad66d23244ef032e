"""One call the ledger cannot store never fails a shared group commit: its submission is answered
LedgerRowRejected alone (nothing of it stored), every other submission of the commit is stored in the
same pass; a transient failure (the file locked) still answers the whole batch LedgerUnavailable.
SQLite and ClickHouse (chdb). Outcomes are compared by the exception's name, so the tests say what
went wrong on a build without the rejection (every submission of the commit: LedgerUnavailable)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.ledger import sqlite_writer
from genai_meter.ledger.clickhouse_writer import ClickHouseWriter
from genai_meter.ledger.model import Entry
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from tests.ledger.chdb_harness import new_database
from tests.ledger.support import T0, count_rows, entry, ledger_config


def _replaced(e: Entry, **changes: object) -> Entry:
    return Entry(dataclasses.replace(e.call, **changes), e.cost)  # type: ignore[arg-type]


# A call no store can take (or that would poison an hour's sums), built as the pipeline would hand it over.
BAD: dict[str, Callable[[int], Entry]] = {
    "end time of 2^63 ns": lambda i: _replaced(entry(i, T0), end_ns=2**63),
    "time to first token of 9.3e12 s": lambda i: _replaced(entry(i, T0 + i), ttft_s=9.3e12),
    "duration of 2^41 microseconds": lambda i: entry(i, T0 + i, duration_s=2**41 / 1e6),
    "sample weight of 2^56": lambda i: _replaced(entry(i, T0 + i), sample_weight=2.0**56),
    "conversation id with a lone surrogate": lambda i: entry(i, T0 + i, conversation="conv-\ud800"),
    "service name with a lone surrogate": lambda i: entry(i, T0 + i, service="svc-\udc80"),
}
REQUESTS = 20
PER_REQUEST = 10


def _config(interval_ms: float) -> Config:
    return ledger_config(commit_interval_ms=interval_ms)


def _submit(writer: object, entries: list[Entry]) -> Future[list[bool]] | BaseException:
    try:
        return writer.submit(entries)  # type: ignore[attr-defined,no-any-return]
    except BaseException as exc:  # a build that raised in `submit` itself
        return exc


def _outcome(submitted: Future[list[bool]] | BaseException) -> str:
    """"ok" (every call new), or the name of the exception the submission got."""
    if isinstance(submitted, BaseException):
        return type(submitted).__name__
    try:
        flags = submitted.result(30)
    except BaseException as exc:
        return type(exc).__name__
    return "ok" if flags == [True] * len(flags) else f"flags {flags}"


def _requests() -> list[list[Entry]]:
    return [[entry(k * 100 + j, T0 + 10**9 + k * 100 + j, customer=f"c{k % 3}") for j in range(PER_REQUEST)]
            for k in range(REQUESTS)]


@pytest.mark.parametrize("bad", sorted(BAD))
def test_sqlite_one_call_never_fails_a_shared_commit(tmp_path: Path, bad: str) -> None:
    writer = SQLiteWriter(tmp_path / "ledger.db", _config(1000))  # nobody commits for a second: one batch
    requests = _requests()
    poisoned = [entry(90_000, T0 + 5), BAD[bad](90_001), entry(90_002, T0 + 6)]
    submitted = [_submit(writer, r) for r in requests[:10]] + [_submit(writer, poisoned)] \
        + [_submit(writer, r) for r in requests[10:]]
    outcomes = [_outcome(s) for s in submitted]  # the first wait commits everything queued, in one batch
    try:
        assert outcomes[:10] + outcomes[11:] == ["ok"] * REQUESTS
        assert outcomes[10] == "LedgerRowRejected"
        assert count_rows(tmp_path / "ledger.db") == REQUESTS * PER_REQUEST  # nothing of the poisoned one
        assert writer.healthy() and writer.failures == 0 and writer.rejections == 1
        assert _outcome(_submit(writer, [poisoned[0], poisoned[2]])) == "ok"  # its other calls, sent alone
    finally:
        writer.close()


def test_sqlite_a_call_the_checks_miss_is_found_by_halving_the_batch(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_writer, "params_problem", lambda columns, params: None)  # no detail: halve
    writer = SQLiteWriter(tmp_path / "ledger.db", _config(1000))
    requests = _requests()
    submitted = [_submit(writer, r) for r in requests[:7]] + [_submit(writer, [BAD["end time of 2^63 ns"](1)])] \
        + [_submit(writer, r) for r in requests[7:]] + [_submit(writer, [BAD["sample weight of 2^56"](2)])]
    outcomes = [_outcome(s) for s in submitted]
    try:
        assert outcomes.count("ok") == REQUESTS
        assert [outcomes[7], outcomes[-1]] == ["LedgerRowRejected"] * 2
        assert count_rows(tmp_path / "ledger.db") == REQUESTS * PER_REQUEST
    finally:
        writer.close()


def test_sqlite_a_locked_file_still_fails_the_whole_batch(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "ledger.db", ledger_config(commit_interval_ms=1000, busy_timeout_seconds=0.2))
    holder = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    try:
        requests = _requests()[:3]
        for r in requests:  # the label sets stored before the lock is taken
            assert _outcome(_submit(writer, r[:1])) == "ok"
        holder.execute("BEGIN EXCLUSIVE")
        submitted = [_submit(writer, r[1:]) for r in requests] + [_submit(writer, [BAD["end time of 2^63 ns"](7)])]
        assert [_outcome(s) for s in submitted] == ["LedgerUnavailable"] * 4
        assert not writer.healthy() and "locked" in (writer.last_error or "")
    finally:
        holder.close()
        writer.close()


@pytest.mark.parametrize("bad", ["end time of 2^63 ns", "sample weight of 2^56", "conversation id with a lone "
                                 "surrogate", "service name with a lone surrogate"])
def test_clickhouse_one_call_never_fails_a_shared_commit(tmp_path: Path, bad: str) -> None:
    executor, db = new_database(Config())
    writer = ClickHouseWriter(lambda: executor, db, _config(1000), tmp_path / "spool")
    requests = _requests()
    poisoned = [entry(90_000, T0 + 5), BAD[bad](90_001)]
    try:
        submitted = [_submit(writer, r) for r in requests[:10]] + [_submit(writer, poisoned)] \
            + [_submit(writer, r) for r in requests[10:]]
        outcomes = [_outcome(s) for s in submitted]
        assert outcomes[:10] + outcomes[11:] == ["ok"] * REQUESTS
        assert outcomes[10] == "LedgerRowRejected"
        assert writer.healthy()
    finally:
        writer.close()
    assert not list((tmp_path / "spool").glob("*.jsonl"))  # everything shipped: no line ClickHouse refused
    rows = executor.query(f"SELECT count(), min(end_ns), max(end_ns) FROM {db}.calls FINAL")[0]
    assert rows == (REQUESTS * PER_REQUEST, T0 + 10**9, T0 + 10**9 + (REQUESTS - 1) * 100 + PER_REQUEST - 1)
