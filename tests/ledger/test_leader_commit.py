"""Commits made by the threads that wait for them (SQLiteWriter's `_Submitted.result`): concurrent
requests with overlapping calls store each call once and get the right new/duplicate answers, the
waiting thread commits itself while the writer thread would still wait for company, a submission
nobody waits for is committed by the writer thread, a busy connection gives TimeoutError within the
timeout, and a closed writer answers LedgerUnavailable."""

from __future__ import annotations

import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait
from pathlib import Path

import pytest

from genai_meter.config import Config
from genai_meter.ledger import LedgerUnavailable
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from tests.ledger.support import T0, count_rows, entry, ledger_config


def _config(interval_ms: float) -> Config:
    return ledger_config(commit_interval_ms=interval_ms)


_stored = count_rows


def test_concurrent_waiters_store_each_call_once_with_the_right_answers(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "ledger.db", _config(0))
    answers: dict[int, list[bool]] = {}
    errors: list[BaseException] = []

    def request(k: int) -> None:
        try:  # requests k and k+1 share half their calls: one of the two stores each shared call
            calls = [entry(i, T0 + i * 1000) for i in range(k * 10, k * 10 + 20)]
            answers[k] = writer.submit(calls).result(30)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    writer.close()
    assert not errors
    assert sorted(answers) == list(range(12))
    assert sum(sum(flags) for flags in answers.values()) == 130  # calls 0..129, each new once
    assert all(len(flags) == 20 for flags in answers.values())
    assert _stored(tmp_path / "ledger.db") == 130


def test_the_waiting_thread_commits_while_the_writer_waits_for_company(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "ledger.db", _config(1000))  # the writer thread waits 1 s for company
    writer.submit([entry(0, T0)]).result(30)  # warm: ids stored
    start = time.monotonic()
    assert writer.submit([entry(1, T0 + 1)]).result(30) == [True]
    waited = time.monotonic() - start
    writer.close()
    assert waited < 0.9  # not the writer thread's 1 s: this thread committed
    assert _stored(tmp_path / "ledger.db") == 2


def test_a_submission_nobody_waits_for_is_committed_by_the_writer_thread(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "ledger.db", _config(5))
    future = writer.submit([entry(i, T0 + i) for i in range(5)])
    done, _ = wait([future], timeout=30)  # waits without calling result
    assert future in done and future.result(0) == [True] * 5
    writer.close()
    assert _stored(tmp_path / "ledger.db") == 5


def test_a_busy_connection_times_out_within_the_timeout(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "ledger.db", _config(1000))
    writer._connection.acquire()  # another thread's long commit (or seal pass)
    try:
        future = writer.submit([entry(0, T0)])
        start = time.monotonic()
        with pytest.raises(FutureTimeout):
            future.result(0.3)
        assert time.monotonic() - start < 5
    finally:
        writer._connection.release()
    assert future.result(30) == [True]  # committed once the connection is free
    writer.close()


def test_a_closed_writer_answers_unavailable(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "ledger.db", _config(0))
    writer.close()
    with pytest.raises(LedgerUnavailable):
        writer.submit([entry(0, T0)]).result(5)


def test_a_callback_that_waits_for_another_commit_does_not_deadlock(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "ledger.db", _config(1000))
    writer.submit([entry(0, T0)]).result(30)
    first = writer.submit([entry(1, T0 + 1)])
    got: list[list[bool]] = []
    first.add_done_callback(lambda _: got.append(writer.submit([entry(2, T0 + 2)]).result(30)))
    assert first.result(30) == [True]  # this thread commits, then answers outside the connection lock
    assert got == [[True]]
    writer.close()
    assert _stored(tmp_path / "ledger.db") == 3


def test_a_cancelled_submission_is_stored_and_the_others_are_answered(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "ledger.db", _config(1000))
    cancelled = writer.submit([entry(0, T0)])
    assert cancelled.cancel()
    other = writer.submit([entry(1, T0 + 1)])
    assert other.result(30) == [True]
    assert writer.submit([entry(2, T0 + 2)]).result(30) == [True]  # the connection is still usable
    writer.close()
    assert _stored(tmp_path / "ledger.db") == 3  # a cancelled submission's calls are stored all the same


def test_a_negative_timeout_acts_as_zero(tmp_path: Path) -> None:
    writer = SQLiteWriter(tmp_path / "ledger.db", _config(1000))
    writer._connection.acquire()
    try:
        timed_out = writer.submit([entry(0, T0)])
        with pytest.raises(FutureTimeout):
            timed_out.result(-1)  # as result(0): no wait (a plain Future raises TimeoutError too)
    finally:
        writer._connection.release()
    assert timed_out.result(30) == [True]  # still queued, committed later
    writer.close()
