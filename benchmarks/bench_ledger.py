"""The ledger's SQLite write rate and CPU per call, where a commit's time goes, and a 90-day summary
from rollups vs a raw scan.

    .venv/bin/python -m benchmarks.bench_ledger [--calls N] [--summary-calls N] [--batch B] [--dir DIR]

Writing: `--calls` calls (5 dimensions-worth of attribution, 6 models, conversations and users, random
trace ids, end times in arrival order within a few seconds, as live traffic) are submitted as requests
of `--batch` calls to one `SQLiteWriter` (WAL, synchronous=FULL, indexes, hourly and daily rollups,
group commit); reported: calls/s (wall) and the CPU per call (submitting thread: the rows; the rest:
the writer thread). Commit parts: groups of 512 calls committed on this thread, the time of each SQL
statement kind and of the writer's Python, and the WAL pages one commit writes. Summary:
`--summary-calls` calls spread over 90 days, then the 90-day totals by model from the rollups, beside
the same answer by a raw-row scan (the reference).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.harness import report
from genai_meter.config import Config, LedgerConfig
from genai_meter.ledger.model import Entry
from genai_meter.ledger.query import Reader
from genai_meter.ledger.sqlite_reader import SQLiteSource
from genai_meter.ledger.sqlite_rollups import seal_days
from genai_meter.ledger.sqlite_schema import open_write
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from genai_meter.money import to_pico
from genai_meter.records import COST_CLASSES, Cost, LLMCall, TokenCounts

DAY_NS = 86400 * 10**9
T0 = 1_767_225_600 * 10**9
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4"), ("openai", "o3"),
          ("gcp.gemini", "gemini-2.5-pro"), ("aws.bedrock", "claude-haiku")]


def entries(n: int, start_ns: int, span_ns: int, seed: int = 1, first_id: int = 0, live: bool = False) -> list[Entry]:
    """`n` calls in [start_ns, start_ns + span_ns): at random times, or (`live`) in arrival order with
    each call ending up to 5 s before it arrives (spans reach the receiver in batches)."""
    rnd = random.Random(seed)
    by_type = {"input": Decimal("0.000250"), "cache_read": Decimal("0.000012500"), "cache_write": Decimal(0),
               "output": Decimal("0.00150"), "reasoning": Decimal(0), "request": Decimal(0)}
    pico = tuple(to_pico(by_type[c]) for c in COST_CLASSES)  # set by the pricer, as `PriceBook.cost` does
    costs = [Cost(by_type, "genai-prices", "0.0.40", f"{p}/{m}", {"input": Decimal("2.5"), "output": Decimal("10")},
                  pico) for p, m in MODELS]  # a unit-price dict per rate set, shared by its calls (as the pricer)
    out = []
    for i in range(first_id, first_id + n):
        k = min(int(rnd.paretovariate(1.5)) - 1, len(MODELS) - 1)  # a few models carry most calls
        service = i % 7
        call = LLMCall(service=f"svc-{service}", environment="prod", provider=MODELS[k][0], model=MODELS[k][1],
                       operation="chat", status="ok" if i % 50 else "error", error_type="" if i % 50 else "timeout",
                       duration_s=0.5 + (i % 1000) / 1000, ttft_s=0.2, tokens=TokenCounts(100, 50, 0, 150, 0),
                       end_ns=start_ns + (max(0, (i - first_id) * span_ns // n - rnd.randrange(5 * 10**9)) if live
                                         else rnd.randrange(span_ns)),
                       dimensions={"customer": f"cust-{min(int(rnd.paretovariate(1.2)), 200)}",
                                   "feature": f"feat-{service * 2 + i % 2}", "project": f"proj-{service % 3}"},
                       request_model=MODELS[k][1], trace_id=rnd.getrandbits(128).to_bytes(16, "big"),
                       span_id=(i % 97 + 1).to_bytes(8, "big"),
                       conversation_id=f"conv-{i // 8}", user_id=f"user-{rnd.randrange(5000)}")
        out.append(Entry(call, costs[k]))
    return out


def write_rate(directory: Path, calls: int, batch: int) -> tuple[float, float, float]:
    """(calls per second wall, CPU µs per call of the submitting thread, of the rest (the writer
    thread)) writing `calls` in requests of `batch`."""
    data = entries(calls, T0, 3600 * 10**9, live=True)  # live ingestion: calls of the current hour
    config = Config(ledger=LedgerConfig(commit_interval_ms=5.0))
    writer = SQLiteWriter(directory / "rate.db", config)
    # warm up to the steady state of a running server: schema, label sets and price entries known
    writer.submit(entries(calls // 5, T0 - 3600 * 10**9, 3600 * 10**9, seed=2, first_id=10**12)).result(600)
    writer.submit(data[:batch]).result(60)
    wall, cpu, mine = time.perf_counter(), time.process_time(), time.thread_time()
    futures = [writer.submit(data[i:i + batch]) for i in range(batch, calls, batch)]
    stored = sum(sum(f.result(600)) for f in futures)
    wall, cpu, mine = time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - mine
    writer.close()
    assert stored == calls - batch
    return stored / wall, mine / stored * 1e6, (cpu - mine) / stored * 1e6


class _Timed:
    """A connection whose statements are timed (thread CPU) by kind: the parts of a commit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.spent: dict[str, float] = {}

    def _timed(self, run: Callable[..., Any], sql: str, *args: Any) -> Any:
        start = time.thread_time()
        out = run(sql, *args)
        if sql.startswith("SELECT"):
            out = _Rows(out.fetchall())
        kind = ("key lookup" if "JOIN calls" in sql else "INSERT INTO calls" if "INTO calls" in sql
                else "rollup upserts" if "rollup_" in sql else sql.split()[0])
        self.spent[kind] = self.spent.get(kind, 0.0) + time.thread_time() - start
        return out

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed(self.conn.execute, sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._timed(self.conn.executemany, sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


class _Rows:
    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def fetchall(self) -> list[Any]:
        return self.rows

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None


def commit_parts(directory: Path, groups: int, size: int = 512) -> tuple[dict[str, float], list[int]]:
    """µs per call of each part of a group commit of `size` live calls (best of 3 rounds of `groups`
    commits on this thread: rows, statements by kind, the writer's Python), and the WAL pages of a few
    commits after a checkpoint."""
    config = Config()
    path = directory / "parts.db"
    writer = SQLiteWriter(path, config)
    writer.close()  # its thread stops; the commits run here
    timed = _Timed(open_write(path, 10.0))
    writer._conn = timed  # type: ignore[assignment]
    rows_of = writer._builder.rows
    data = entries(size * (groups * 4 + 8), T0, 3600 * 10**9, live=True)
    for i in range(0, size * 4, size):  # warm: label sets and prices known
        writer._commit([(rows_of(data[i:i + size]), Future())])
    best: dict[str, float] = {}
    for r in range(3):
        timed.spent.clear()
        rows_s = commit_s = 0.0
        for g in range(groups):
            part = data[size * (4 + r * groups + g):][:size]
            start = time.thread_time()
            rows = rows_of(part)
            built = time.thread_time()
            writer._commit([(rows, Future())])
            commit_s += time.thread_time() - built
            rows_s += built - start
        spent = {"rows (RowBuilder, request thread)": rows_s, "commit, all (writer thread)": commit_s,
                 **timed.spent, "writer Python": commit_s - sum(timed.spent.values())}
        if not best or spent["commit, all (writer thread)"] < best["commit, all (writer thread)"]:
            best = spent
    pages = []
    size_of_page = timed.conn.execute("PRAGMA page_size").fetchone()[0] + 24
    for i in range(4):
        timed.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        writer._commit([(rows_of(data[size * (4 + 3 * groups + i):][:size]), Future())])
        pages.append(os.path.getsize(f"{path}-wal") // size_of_page)
    timed.conn.close()
    return {k: v / (groups * size) * 1e6 for k, v in best.items()}, pages


def summary(directory: Path, calls: int) -> tuple[float, float, int]:
    """(seconds from rollups, seconds by raw scan, calls counted) of a 90-day total by model."""
    path = directory / "summary.db"
    writer = SQLiteWriter(path, Config(ledger=LedgerConfig(commit_interval_ms=0.0)))
    chunk = 50_000
    for i in range(0, calls, chunk):
        n = min(chunk, calls - i)
        writer.submit(entries(n, T0, 90 * DAY_NS, seed=i, first_id=i)).result(600)
    writer.close()
    conn = open_write(path, 5.0)
    while seal_days(conn, T0 + 91 * DAY_NS) < T0 + 91 * DAY_NS:  # the steady state: past days sealed
        pass
    conn.close()
    reader = Reader(SQLiteSource(path, Config()))
    start, end = T0, T0 + 90 * DAY_NS
    t = time.perf_counter()
    rolled = reader.totals(start, end, {}, ["model"])
    from_rollups = time.perf_counter() - t
    t = time.perf_counter()
    raw: dict[tuple[str, ...], int] = {}
    for _, key, sums in reader.source.aggregate("raw", start, end, {}, ["model"], False):
        raw[key] = raw.get(key, 0) + sums[0]
    by_raw = time.perf_counter() - t
    assert {r.key: r.calls for r in rolled} == raw
    reader.close()
    return from_rollups, by_raw, sum(raw.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_ledger")
    parser.add_argument("--calls", type=int, default=200_000, help="calls for the write rate")
    parser.add_argument("--summary-calls", type=int, default=1_000_000, help="calls stored for the 90-day summary")
    parser.add_argument("--batch", type=int, default=100, help="calls per submitted request")
    parser.add_argument("--dir", type=Path, help="where the ledger files go (default: a temp dir)")
    args = parser.parse_args([] if argv is None else argv)  # benchmarks/__main__ calls main() with defaults
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rate, submit_us, writer_us = write_rate(Path(tmp), args.calls, args.batch)
        report(f"ledger write (SQLite, {args.calls} calls, requests of {args.batch})", [
            ("calls/s (wall)", f"{rate:,.0f}", "target >= 30,000/s on one core"),
            ("CPU per call", f"{submit_us + writer_us:.1f} us", "submit + writer thread, rollups and indexes included"),
            ("  of which submit (rows)", f"{submit_us:.1f} us", "the request threads"),
            ("  of which the writer thread", f"{writer_us:.1f} us", "group commits, checkpoints"),
        ])
        parts, pages = commit_parts(Path(tmp), 12)
        report("one group commit of 512 live calls, µs per call (best of 3 rounds of 12, thread CPU)",
               [(name, f"{us:.2f} us", "") for name, us in parts.items()]
               + [("WAL pages per commit", ", ".join(map(str, pages)), "4 KiB pages, after a checkpoint")])
        rolled, raw, counted = summary(Path(tmp), args.summary_calls)
        report(f"90-day summary by model over {counted:,} stored calls", [
            ("from rollups", f"{rolled * 1000:.1f} ms", "target <= 1 s"),
            ("raw scan (reference)", f"{raw * 1000:.1f} ms", f"x{raw / rolled:.0f} the rollup time"),
        ])


if __name__ == "__main__":
    main(sys.argv[1:])
