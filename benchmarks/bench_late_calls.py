"""Late calls: spans dated over the past 30 days, stored by the real writer, against live traffic.

    python -m benchmarks.bench_late_calls [--dir DIR] [--size 1M:10k] [--live N] [--late N]
                                          [--customers 30000] [--batch 500] [--profile FILE]

A copy of a `reports` data set's ledger (history, rollups, label sets) is sealed up to the real
clock, then `ledger.open_writer` (as `serve` uses it) stores, in requests of `--batch` calls, each
waited for as the receiver does:
1. `--live` calls ending in the last seconds (ahead of the rollup watermark; the writer's seal
   thread rolls them up as in service), over `--customers` customers: the live rate;
2. `--late` calls ending over the 30 days before (behind the watermark: every batch rolls its calls
   up itself), over the same customers (their label sets known by then): the late rate;
and, with `--profile`, cProfile of the late run (the submitting thread commits, so it holds the work).
Then, for one late batch and for all late calls at once (as a deferred seal pass would take them),
the current roll-up (`sqlite_rollups.add_rollups`: per (hour, label set) upserts, per (day, label
set) upserts, and a rebuild of `rollup_field_day` for every sealed day the batch touches) against
the same calls rolled up by grouped statements (`late_grouped`), timed in the same transaction
(rolled back), the rollup tables compared after each; and the hourly seal of a day of history.
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
from benchmarks.late_grouped import late_grouped, rollup_digest
from benchmarks.reports_data import HOUR_NS, NOW_NS, dataset_dir, ensure, grouped_seal_sql, seal_all, write_config
from genai_meter.config import load_config
from genai_meter.ledger import Entry, open_writer
from genai_meter.ledger.rows import RowBuilder
from genai_meter.ledger.sqlite_params import INSERT_CALL, Dictionaries, params_of
from genai_meter.ledger.sqlite_rollups import SEAL_HOURS, add_rollups, days_sealed_until
from genai_meter.ledger.sqlite_schema import open_write
from genai_meter.ledger.sqlite_store import _late_sums
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


def store(url: str, config: object, batches: list[list[Entry]], profile: Path | None = None) -> float:
    """Calls per second storing `batches` through the real writer, one request at a time."""
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
    if profiler and profile:
        profiler.dump_stats(str(profile))
        pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(25)
    return sum(len(b) for b in batches) / took


def compare_rollups(db: Path, config: object, batch: list[Entry]) -> tuple[float, float, bool]:
    """(seconds of add_rollups, seconds of late_grouped, same rollup tables) for one late batch, each in
    a transaction that inserts the batch's calls, rolls them up, and is rolled back."""
    conn = open_write(db, 30.0)
    dicts = Dictionaries(db, 30.0)
    builder = RowBuilder(config)  # type: ignore[arg-type]
    params = sorted(params_of([builder.row(e) for e in batch], dicts))
    days = sorted({p[0] - p[0] % DAY_NS for p in params if p[0] < days_sealed_until(conn)})
    out: list[float] = []
    digests = []
    for grouped in (False, True):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_CALL, params)
        t0 = time.perf_counter()
        if grouped:
            late_grouped(conn, params)
        else:
            add_rollups(conn, _late_sums(conn, params))
        out.append(time.perf_counter() - t0)
        digests.append(rollup_digest(conn, days))
        conn.execute("ROLLBACK")
    dicts.close()
    conn.close()
    return out[0], out[1], digests[0] == digests[1]


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
    source, _, _ = ensure(ns.dir, calls, customers)
    work = dataset_dir(ns.dir, calls, customers).with_name(f"late-{calls}-{customers}")
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
    live_rate = store(config.ledger.url, config, chunks)
    late_chunks = [late[i:i + ns.batch] for i in range(0, len(late), ns.batch)]
    probe = entries(ns.batch, ns.customers, now - 30 * DAY_NS, now - 3 * 3600 * 10**9, seed=3)
    current_s, grouped_s, same = compare_rollups(work / "ledger.db", config, probe)
    bulk = entries(ns.late, ns.customers, now - 30 * DAY_NS, now - 3 * 3600 * 10**9, seed=4)
    bulk_current_s, bulk_grouped_s, bulk_same = compare_rollups(work / "ledger.db", config, bulk)
    late_rate = store(config.ledger.url, config, late_chunks, ns.profile)
    seal_rows = compare_seal(work / "ledger.db")
    with sqlite3.connect(work / "ledger.db") as check:
        labelsets = check.execute("SELECT COUNT(*) FROM labelsets").fetchone()[0]
    report(f"late calls ({ns.size} history, {labelsets:,} label sets, requests of {ns.batch})", [
        ("live: calls ending now", f"{live_rate:,.0f}/s", f"{ns.live:,} calls, {ns.customers:,} customers"),
        ("late: calls over the past 30 days", f"{late_rate:,.0f}/s",
         f"{ns.late:,} calls; {late_rate / live_rate:.1%} of live (target >= 50 %)"),
        ("one late batch: add_rollups", f"{current_s * 1000:.0f} ms", f"{current_s / ns.batch * 1e6:.0f} us per call"),
        ("one late batch: grouped statements", f"{grouped_s * 1000:.0f} ms",
         f"{grouped_s / ns.batch * 1e6:.0f} us per call; same rollups: {same}"),
        (f"all {ns.late:,} late calls at once: add_rollups", f"{bulk_current_s * 1000:.0f} ms",
         f"{bulk_current_s / ns.late * 1e6:.0f} us per call"),
        (f"all {ns.late:,} late calls at once: grouped", f"{bulk_grouped_s * 1000:.0f} ms",
         f"{bulk_grouped_s / ns.late * 1e6:.0f} us per call (a deferred seal pass); same rollups: {bulk_same}"),
        *seal_rows,
    ])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
