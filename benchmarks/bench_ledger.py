"""The ledger's SQLite write rate and CPU per call, and a 90-day summary from rollups vs a raw scan.

    .venv/bin/python -m benchmarks.bench_ledger [--calls N] [--summary-calls N] [--batch B] [--dir DIR]

Writing: `--calls` calls (5 dimensions-worth of attribution, 6 models, conversations and users) are
submitted as requests of `--batch` calls to one `SQLiteWriter` (WAL, synchronous=FULL, indexes,
hourly and daily rollups, group commit); reported: calls/s (wall) and the process CPU per call
(submitting thread + writer thread). Summary: `--summary-calls` calls spread over 90 days, then the
90-day totals by model from the rollups, beside the same answer by a raw-row scan (the reference).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from benchmarks.harness import report
from genai_meter.config import Config, LedgerConfig
from genai_meter.ledger.model import Entry
from genai_meter.ledger.query import Reader
from genai_meter.ledger.sqlite_reader import SQLiteSource
from genai_meter.ledger.sqlite_rollups import seal_days
from genai_meter.ledger.sqlite_schema import open_write
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from genai_meter.records import Cost, LLMCall, TokenCounts

DAY_NS = 86400 * 10**9
T0 = 1_767_225_600 * 10**9
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4"), ("openai", "o3"),
          ("gcp.gemini", "gemini-2.5-pro"), ("aws.bedrock", "claude-haiku")]


def entries(n: int, start_ns: int, span_ns: int, seed: int = 1, first_id: int = 0) -> list[Entry]:
    rnd = random.Random(seed)
    costs = [Cost({"input": Decimal("0.000250"), "cache_read": Decimal("0.000012500"), "cache_write": Decimal(0),
                   "output": Decimal("0.00150"), "reasoning": Decimal(0), "request": Decimal(0)},
                  "genai-prices", "0.0.40", f"{p}/{m}", {"input": Decimal("2.5"), "output": Decimal("10")})
             for p, m in MODELS]
    out = []
    for i in range(first_id, first_id + n):
        k = min(int(rnd.paretovariate(1.5)) - 1, len(MODELS) - 1)  # a few models carry most calls
        service = i % 7
        call = LLMCall(service=f"svc-{service}", environment="prod", provider=MODELS[k][0], model=MODELS[k][1],
                       operation="chat", status="ok" if i % 50 else "error", error_type="" if i % 50 else "timeout",
                       duration_s=0.5 + (i % 1000) / 1000, ttft_s=0.2, tokens=TokenCounts(100, 50, 0, 150, 0),
                       end_ns=start_ns + rnd.randrange(span_ns),
                       dimensions={"customer": f"cust-{min(int(rnd.paretovariate(1.2)), 200)}",
                                   "feature": f"feat-{service * 2 + i % 2}", "project": f"proj-{service % 3}"},
                       request_model=MODELS[k][1], trace_id=i.to_bytes(16, "big"), span_id=(i % 97).to_bytes(8, "big"),
                       conversation_id=f"conv-{i // 8}", user_id=f"user-{rnd.randrange(5000)}")
        out.append(Entry(call, costs[k]))
    return out


def write_rate(directory: Path, calls: int, batch: int) -> tuple[float, float]:
    """(calls per second wall, CPU microseconds per call) writing `calls` in requests of `batch`."""
    data = entries(calls, T0, 3600 * 10**9)  # live ingestion: calls of the current hour
    config = Config(ledger=LedgerConfig(commit_interval_ms=5.0))
    writer = SQLiteWriter(directory / "rate.db", config)
    # warm up to the steady state of a running server: schema, label sets and price entries known
    writer.submit(entries(calls // 5, T0 - 3600 * 10**9, 3600 * 10**9, seed=2, first_id=10**12)).result(600)
    writer.submit(data[:batch]).result(60)
    wall, cpu = time.perf_counter(), time.process_time()
    futures = [writer.submit(data[i:i + batch]) for i in range(batch, calls, batch)]
    stored = sum(sum(f.result(600)) for f in futures)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    writer.close()
    assert stored == calls - batch
    return stored / wall, cpu / stored * 1e6


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
        rate, cpu_us = write_rate(Path(tmp), args.calls, args.batch)
        report(f"ledger write (SQLite, {args.calls} calls, requests of {args.batch})", [
            ("calls/s (wall)", f"{rate:,.0f}", "target >= 30,000/s on one core"),
            ("CPU per call", f"{cpu_us:.1f} us", "submit + writer thread, rollups and indexes included"),
        ])
        rolled, raw, counted = summary(Path(tmp), args.summary_calls)
        report(f"90-day summary by model over {counted:,} stored calls", [
            ("from rollups", f"{rolled * 1000:.1f} ms", "target <= 1 s"),
            ("raw scan (reference)", f"{raw * 1000:.1f} ms", f"x{raw / rolled:.0f} the rollup time"),
        ])


if __name__ == "__main__":
    main(sys.argv[1:])
