"""Calls pruned (by age, or to `max_bytes`) and then sent again (an OTLP retry, a collector replay) are
answered as stored before and stored nowhere twice, for `ledger.dedup_horizon_hours`; the identities
expire past the horizon; live traffic (calls after the newest prune cutoff) never looks them up."""

from __future__ import annotations

import time
from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger import open_reader, prune
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from tests.ledger.support import DAY_NS, HOUR_NS, count_rows, entry, ledger_config

NOW = time.time_ns() // HOUR_NS * HOUR_NS  # the writers' own prune passes expire identities by the clock
FAR = NOW + 1000 * DAY_NS


def _write(path: Path, entries: list, config: Config | None = None) -> list[bool]:
    writer = SQLiteWriter(path, config or Config())
    try:
        flags: list[bool] = []
        for i in range(0, len(entries), 1000):
            flags += writer.submit(entries[i:i + 1000]).result(30)
        return flags
    finally:
        writer.close()


def _calls_in_ledger(path: Path) -> int:
    reader = open_reader(f"sqlite:///{path}", Config())
    try:
        return reader.totals(0, FAR, {})[0].calls  # rollups for pruned calls, raw rows for the rest
    finally:
        reader.close()


def test_calls_pruned_by_age_and_sent_again_are_not_stored_twice(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    calls = [entry(i, NOW - 2 * DAY_NS + i * 10**9) for i in range(9)]  # two days old
    assert _write(path, calls) == [True] * 9
    assert prune(f"sqlite:///{path}", ledger_config(retention_days=1), now_ns=NOW) == 9
    assert count_rows(path, "calls") == 0
    assert _write(path, calls) == [False] * 9  # the retry: known as stored
    assert _calls_in_ledger(path) == 9 and count_rows(path, "pruned_calls") == 9
    assert _write(path, calls + [entry(100, NOW - HOUR_NS)]) == [False] * 9 + [True]


def test_calls_pruned_to_max_bytes_and_sent_again_are_not_stored_twice(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    calls = [entry(i, NOW - HOUR_NS + i * 10**6, conversation=f"conversation-{i}", user=f"user-{i}")
             for i in range(5000)]
    assert _write(path, calls) == [True] * 5000
    deleted = prune(f"sqlite:///{path}", ledger_config(max_bytes=1024 * 1024), now_ns=NOW)
    assert 0 < deleted < 5000 and count_rows(path, "calls") == 5000 - deleted
    assert _write(path, calls) == [False] * 5000  # every re-sent call: 0 doubles
    assert _calls_in_ledger(path) == 5000
    assert count_rows(path, "pruned_calls") == deleted  # a quarter of max_bytes holds them all here


def test_identities_expire_past_the_horizon_and_beyond_it_a_call_counts_again(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    recent = [entry(i, NOW - 2 * DAY_NS + i) for i in range(5)]
    old = [entry(100 + i, NOW - 10 * DAY_NS + i) for i in range(5)]  # older than the 72 h horizon
    _write(path, recent + old)
    prune(url, ledger_config(retention_days=1), now_ns=NOW)
    assert count_rows(path, "pruned_calls") == 5  # only the calls within the horizon
    prune(url, ledger_config(retention_days=1, dedup_horizon_hours=24), now_ns=NOW)  # a shorter horizon: expired
    assert count_rows(path, "pruned_calls") == 0
    assert _write(path, recent) == [True] * 5  # no longer known: a replay this late counts again


def test_live_traffic_never_looks_up_pruned_identities(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    _write(path, [entry(i, NOW - 2 * DAY_NS + i) for i in range(5)])
    prune(f"sqlite:///{path}", ledger_config(retention_days=1), now_ns=NOW)
    writer = SQLiteWriter(path, Config())
    statements: list[str] = []
    writer._conn.set_trace_callback(statements.append)
    try:
        assert writer.submit([entry(10 + i, NOW + i) for i in range(50)]).result(10) == [True] * 50
        assert not [s for s in statements if "pruned_calls" in s]
        assert writer.submit([entry(0, NOW - 2 * DAY_NS), entry(99, NOW + 99)]).result(10) == [False, True]
        assert [s for s in statements if "pruned_calls" in s]
    finally:
        writer.close()
