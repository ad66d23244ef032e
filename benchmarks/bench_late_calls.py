"""Late calls: spans dated over the past 30 days, stored by the real writer, against live traffic.

    python -m benchmarks.bench_late_calls [--dir DIR] [--size 1M:10k] [--live N] [--late N]
                                          [--customers 30000] [--batch 500] [--profile FILE]

A copy of a `reports` data set's ledger (history, rollups, label sets) is sealed up to the real
clock, then `ledger.open_writer` (as `serve` uses it) stores, in requests of `--batch` calls, each
waited for as the receiver does:
1. `--live` calls ending in the last seconds (ahead of the rollup watermark; the writer's seal
   thread rolls them up as in service), over `--customers` customers: the live rate;
2. `--late` calls ending over the 30 days before (behind the watermark: every batch holds its late
   calls for the writer thread's grouped fold, `sqlite_late`), over the same customers: the late rate
   (acknowledged; and with the writer's close, which folds the calls still held);
and, with `--profile`, cProfile of the late run (the submitting thread commits, so it holds the work).
Then, per late batch, committed on the copy with a checkpoint as the writer does: its commit rolled up
in the commit itself (as before schema 11: grouped statements, `late_grouped`) against held (the
real `sqlite_store.store`), in ms and WAL pages, and one fold of the held ones; and the hourly seal
of a day of history. A cached data set (`DIR/<calls>-<customers>/ready`) is copied, never changed.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import shutil
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

from benchmarks.bench_reports import _size
from benchmarks.harness import report
from benchmarks.late_grouped import late_grouped
from benchmarks.reports_data import HOUR_NS, NOW_NS, dataset_dir, ensure, grouped_seal_sql, seal_all, write_config
from genai_meter.config import load_config
from genai_meter.ledger import Entry, open_writer
from genai_meter.ledger.rows import RowBuilder
from genai_meter.ledger.sqlite_late import fold_pass
from genai_meter.ledger.sqlite_params import INSERT_CALL, Dictionaries, params_of
from genai_meter.ledger.sqlite_rollups import SEAL_HOURS
from genai_meter.ledger.sqlite_schema import open_write
from genai_meter.ledger.sqlite_store import store as store_batch
from genai_meter.records import Cost, LLMCall, TokenCounts

DAY_NS = 86400 * 10**9
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5")]


def entries(n: int, customers: int, start_ns: int, end_ns: int, seed: int) -> list[Entry]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        provider, model = MODELS[i % len(MODELS)]
        cost = Cost({"input": Decimal("0.000250"), "cache_read": Decimal(0), "cache_write": Decimal(0),
                     "output": Decimal("0.0015"), "reasoning": Decimal(0), "request": Decimal(0)},
                    "genai-prices", "bench", f"{provider}/{model}", {"input": Decimal("2.5"), "output": Decimal("10")})
        call = LLMCall("svc-1", "prod", provider, model, "chat", "ok", "", 0.5, None,
                       TokenCounts(input=100 + i % 50, output=150), rnd.randrange(start_ns, end_ns),
                       {"customer": f"cust-{rnd.randrange(customers)}", "feature": f"feat-{i % 20}",
                        "organization": f"org-{i % 40}"},
                       trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8))
        out.append(Entry(call, cost))
    return out


def store(url: str, config: object, batches: list[list[Entry]], profile: Path | None = None) -> tuple[float, float]:
    """Calls per second storing `batches` through the real writer, one request at a time: acknowledged, and
    with the writer's close (its last checkpoint, and the fold of the late calls still held)."""
    writer = open_writer(url, config)  # type: ignore[arg-type]
    profiler = cProfile.Profile() if profile else None
    try:
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        for batch in batches:
            flags = writer.submit(batch).result(timeout=600)
            assert all(flags), "every call is new"
        if profiler:
            profiler.disable()
        took = time.perf_counter() - t0
    finally:
        writer.close()
    closed = time.perf_counter() - t0
    if profiler and profile:
        profiler.dump_stats(str(profile))
        pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(25)
    calls = sum(len(b) for b in batches)
    return calls / took, calls / closed


def compare_commits(db: Path, config: object, batches: list[list[Entry]]) -> dict[str, tuple[float, float]]:
    """Per late batch, (ms, WAL pages) of its commit (transaction, COMMIT and a PASSIVE checkpoint, as the
    writer does each second) rolled up in its own commit as before (`late_grouped`: the same rollups) and
    held (`sqlite_store.store`), on the work copy (committed); then the fold of the held ones (one pass)."""
    conn = open_write(db, 30.0)
    dicts = Dictionaries(db, 30.0)
    builder = RowBuilder(config)  # type: ignore[arg-type]
    out: dict[str, tuple[float, float]] = {}
    half = len(batches) // 2
    for name, part in (("rolled up in its commit", batches[:half]), ("held", batches[half:])):
        took = pages = 0.0
        for batch in part:
            params = sorted(params_of([builder.row(e) for e in batch], dicts))
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            t0 = time.perf_counter()
            if name == "held":
                store_batch(conn, dicts, params, look_up=False)
            else:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(INSERT_CALL, params)
                late_grouped(conn, params)
                conn.execute("COMMIT")
            pages += conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
            took += time.perf_counter() - t0
        out[name] = (took / len(part) * 1000, pages / len(part))
    held = conn.execute("SELECT COUNT(*) FROM late_calls").fetchone()[0]
    t0 = time.perf_counter()
    while not fold_pass(conn):
        pass
    pages = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    out[f"fold of the {held:,} held"] = ((time.perf_counter() - t0) * 1000, pages)
    dicts.close()
    conn.close()
    return out


def compare_seal(db: Path, hours: int = 24) -> list[tuple[str, str, str]]:
    """The hourly seal of `hours` hours of history (re-done in a transaction, rolled back): the pass's
    per-hour statement as it is, with the error flag looked up per label set, and one grouped statement."""
    conn = open_write(db, 30.0)
    end = NOW_NS - NOW_NS % HOUR_NS
    start = end - hours * HOUR_NS
    calls = conn.execute("SELECT COUNT(*) FROM calls WHERE end_ns >= ? AND end_ns < ?", (start, end)).fetchone()[0]
    per_label = SEAL_HOURS.replace(f"SELECT end_ns - end_ns % {HOUR_NS}, labelset,", "SELECT ?3, labelset,") \
        .replace("GROUP BY 1, 2 ON CONFLICT", "GROUP BY labelset ON CONFLICT")
    SEAL_HOUR = per_label.replace("COUNT(*) * (SELECT status <> 'ok' FROM labelsets WHERE id = labelset)",
                                  "COUNT(*) * (labelset IN (SELECT id FROM labelsets WHERE status <> 'ok'))")
    rows = []
    for name, run in (("per hour, as sealed before", lambda h: conn.execute(SEAL_HOUR, (h, h + HOUR_NS, h))),
                      ("per hour, error flag by label set id", lambda h: conn.execute(per_label, (h, h + HOUR_NS, h))),
                      ("one statement grouped by (hour, label set)", None)):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM rollup_hour WHERE bucket >= ? AND bucket < ?", (start, end))
        t0 = time.perf_counter()
        if run is None:
            conn.execute(grouped_seal_sql(), (start, end))
        else:
            for h in range(start, end, HOUR_NS):
                run(h)
        took = time.perf_counter() - t0
        conn.execute("ROLLBACK")
        rows.append((f"seal {hours} h: {name}", f"{took * 1000:.0f} ms", f"{took / calls * 1e6:.1f} us per call"))
    conn.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("BENCH_DIR", "benchdata")))
    parser.add_argument("--size", default="1M:10k", help="the reports data set to copy (calls:customers)")
    parser.add_argument("--live", type=int, default=100_000)
    parser.add_argument("--late", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--profile", type=Path, default=None)
    ns = parser.parse_args(argv)
    calls, customers = _size(ns.size)
    source = dataset_dir(ns.dir, calls, customers)
    if not (source / "ready").is_file():  # a cached data set is copied as it is (never migrated in place)
        source, _, _ = ensure(ns.dir, calls, customers)
    work = source.with_name(f"late-{calls}-{customers}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copy(source / "ledger.db", work / "ledger.db")
    config = load_config(write_config(work))
    assert config.ledger.url is not None
    now = time.time_ns()
    conn = open_write(work / "ledger.db", 30.0)
    seal_all(conn, now - 120 * 10**9)  # the history sealed up to the real clock
    conn.close()
    live = entries(ns.live, ns.customers, now - 10 * 10**9, now, seed=1)
    late = entries(ns.late, ns.customers, now - 30 * DAY_NS, now - 3 * 3600 * 10**9, seed=2)
    chunks = [live[i:i + ns.batch] for i in range(0, len(live), ns.batch)]
    live_rate, live_closed = store(config.ledger.url, config, chunks)
    late_chunks = [late[i:i + ns.batch] for i in range(0, len(late), ns.batch)]
    late_rate, late_closed = store(config.ledger.url, config, late_chunks, ns.profile)
    probes = [entries(ns.batch, ns.customers, now - 30 * DAY_NS, now - 3 * 3600 * 10**9, seed=10 + i)
              for i in range(8)]
    commits = compare_commits(work / "ledger.db", config, probes)
    seal_rows = compare_seal(work / "ledger.db")
    with sqlite3.connect(work / "ledger.db") as check:
        labelsets = check.execute("SELECT COUNT(*) FROM labelsets").fetchone()[0]
    report(f"late calls ({ns.size} history, {labelsets:,} label sets, requests of {ns.batch})", [
        ("live: calls ending now", f"{live_rate:,.0f}/s",
         f"{ns.live:,} calls, {ns.customers:,} customers; {live_closed:,.0f}/s with the writer's close"),
        ("late: calls over the past 30 days", f"{late_rate:,.0f}/s",
         f"{ns.late:,} calls; {late_rate / live_rate:.1%} of live (target >= 50 %); with the writer's close "
         f"(the last fold): {late_closed:,.0f}/s, {late_closed / live_closed:.1%}"),
        *((f"one late batch: {name}" if not name.startswith("fold") else name, f"{ms:.0f} ms",
           f"{pages:,.0f} WAL pages") for name, (ms, pages) in commits.items()),
        *seal_rows,
    ])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
