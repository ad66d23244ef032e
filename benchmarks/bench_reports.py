"""The report service over a large SQLite ledger: answers through the real app vs a plain raw scan.

    .venv/bin/python -m benchmarks.bench_reports [--calls N] [--csv-calls N] [--dir DIR] [--writer] [--skip-csv]

1. `--calls` calls over 90 days (6 models, `--customers` customers, 20 features, 4 organizations) are
   bulk-inserted by SQL with their hourly and daily rollups (`--writer`: written by the ledger's own
   writer, slow at this size). Then, through the Flask app (real routing, validation, JSON):
   the 90-day summary and the 30-day detailed report by customer, each beside the same figures
   computed by a plain scan of the raw `calls` rows in SQL (the reference), in the same run; the
   figures must be equal to the last digit.
2. A `--csv-calls` ledger: the detailed CSV of every call (`rows=calls`), streamed through waitress
   in a child process; the child's peak RSS is reported (constant memory: it must not grow with rows).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import httpx
import yaml

from benchmarks.harness import report
from genai_meter.config import Config, load_config
from genai_meter.ledger import Entry, open_reader, open_writer
from genai_meter.ledger.sqlite_rollups import seal_days
from genai_meter.ledger.sqlite_schema import open_write
from genai_meter.money import to_pico, usd_text
from genai_meter.records import Cost, LLMCall, TokenCounts
from genai_meter.reports.service.app import create_app

DAY_NS = 86400 * 10**9
NOW_NS = 1_795_176_000 * 10**9  # 2026-11-20T12:00:00Z
MODELS = [("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"), ("openai", "o3"),
          ("gcp.gemini", "gemini-2.5-pro"), ("aws.bedrock", "claude-haiku")]
T = TypeVar("T")
COST_CLASSES = ("input", "cache_read", "cache_write", "output", "reasoning", "request")


def make_config(directory: Path) -> Config:
    data = {"dimensions": {"customer": {"attributes": ["customer.id"], "max_values": 5000},
                           "feature": {"attributes": ["feature.id"]},
                           "organization": {"attributes": ["organization.id"]}},
            "ledger": {"url": f"sqlite:///{directory / 'ledger.db'}"}}
    (directory / "config.yaml").write_text(yaml.safe_dump(data))
    return load_config(directory / "config.yaml")


def fill(config: Config, calls: int, seed: int = 1, customers: int = 2000) -> None:
    """`calls` calls spread over the 90 days before NOW_NS, written by the ledger's writer."""
    rnd = random.Random(seed)
    costs = [Cost({"input": Decimal("0.000250"), "cache_read": Decimal("0.0000125"), "cache_write": Decimal(0),
                   "output": Decimal("0.0015"), "reasoning": Decimal(0), "request": Decimal(0)},
                  "genai-prices", "bench", f"{p}/{m}", {"input": Decimal("2.5"), "output": Decimal("10")})
             for p, m in MODELS]
    assert config.ledger.url is not None
    writer = open_writer(config.ledger.url, config)
    start = NOW_NS - 90 * DAY_NS
    try:
        batch: list[Entry] = []
        for i in range(calls):
            k = i % len(MODELS)
            provider, model = MODELS[k]
            call = LLMCall("web", "prod", provider, model, "chat", "ok", "", 0.5, None,
                           TokenCounts(input=100 + i % 50, cache_read=5, output=150),
                           start + rnd.randrange(90 * DAY_NS),
                           {"customer": f"c-{rnd.randrange(customers)}", "feature": f"f-{i % 20}",
                            "organization": f"org-{i % 4}"},
                           trace_id=i.to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"))
            batch.append(Entry(call, costs[k]))
            if len(batch) == 5000:
                writer.submit(batch).result(timeout=120)
                batch = []
        if batch:
            writer.submit(batch).result(timeout=120)
    finally:
        writer.close()


def bulk_fill(config: Config, calls: int, customers: int = 2000) -> None:
    """Calls shaped as `fill`'s (a random customer and end time per call), inserted in bulk by SQL
    (recursive CTE) with rollups built by GROUP BY and past days sealed: the writer's speed is not what
    this benchmark measures, and 10M calls through it take too long here."""
    assert config.ledger.url is not None
    path = Path(config.ledger.url.removeprefix("sqlite:///"))
    conn = open_write(path, 30.0)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    step = 90 * DAY_NS // calls  # calls in time order (a random instant of each step): a fast append
    start = NOW_NS - 90 * DAY_NS
    pico = {c: to_pico(v) for c, v in (("input", Decimal("0.000250")), ("cache_read", Decimal("0.0000125")),
                                       ("output", Decimal("0.0015")))}
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO prices (id, source, version, entry, unit_prices) VALUES (?, 'genai-prices', "
                     "'bench', ?, '{\"input\":\"2.5\",\"output\":\"10\"}')",
                     [(k + 1, f"{p}/{m}") for k, (p, m) in enumerate(MODELS)])
    combos = 60  # model (i % 6), feature (i % 20) and organization (i % 4) repeat every 60 calls
    conn.executemany("INSERT INTO labelsets (id, service, environment, provider, model, request_model, operation, "
                     "status, error_type, dims) VALUES (?, 'web', 'prod', ?, ?, ?, 'chat', 'ok', '', ?)",
                     [(j * customers + c + 1, MODELS[j % 6][0], MODELS[j % 6][1], MODELS[j % 6][1],
                       json.dumps({"customer": f"c-{c}", "feature": f"f-{j % 20}", "organization": f"org-{j % 4}"},
                                  sort_keys=True, separators=(",", ":")))
                      for j in range(combos) for c in range(customers)])
    conn.execute(
        f"INSERT INTO calls (end_ns, trace_id, span_id, parent_span_id, labelset, conversation, user, duration_us, "
        f"ttft_us, t_input, t_cache_read, t_cache_write, t_output, t_reasoning, c_input, c_cache_read, "
        f"c_cache_write, c_output, c_reasoning, c_request, list_cost, price, unpriced, unmetered, invalid, "
        f"weight_micro) "
        f"WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?) "
        f"SELECT ? + i * ? + abs(random()) % ?, CAST(printf('%032x', i) AS BLOB), X'0000000000000001', X'', "
        f"  (i % 60) * ? + (abs(random()) % ?) + 1, '', '', 500000, NULL, 100 + i % 50, 5, 0, 150, 0, "
        f"  {pico['input']}, {pico['cache_read']}, 0, {pico['output']}, 0, 0, "
        f"  {sum(pico.values())}, (i % 6) + 1, 0, '', '', 1000000 FROM g",
        (calls, start, step, step, customers, customers))
    conn.execute("COMMIT")
    while seal_days(conn, NOW_NS) < NOW_NS - NOW_NS % DAY_NS:  # the steady state: hours and past days sealed
        pass
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def raw_summary(db: Path, start: int, end: int) -> tuple[int, int]:
    """(calls, cost pico) by a plain scan of the raw rows."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    sums = " + ".join(f"c_{c}" for c in COST_CLASSES)
    calls, cost = 0, 0
    for (value,) in conn.execute(f"SELECT {sums} FROM calls WHERE end_ns >= ? AND end_ns < ?", (start, end)):
        calls += 1
        cost += value
    conn.close()
    return calls, cost


def raw_by_customer(db: Path, start: int, end: int) -> dict[str, int]:
    """Cost pico per customer by a plain scan of the raw rows (label sets decoded in Python)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dims = {i: json.loads(d).get("customer", "") for i, d in conn.execute("SELECT id, dims FROM labelsets")}
    sums = " + ".join(f"c_{c}" for c in COST_CLASSES)
    out: dict[str, int] = {}
    for labelset, value in conn.execute(f"SELECT labelset, {sums} FROM calls WHERE end_ns >= ? AND end_ns < ?",
                                        (start, end)):
        customer = dims[labelset]
        out[customer] = out.get(customer, 0) + value
    conn.close()
    return out


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def bench_queries(directory: Path, calls: int, customers: int, writer: bool = False) -> list[tuple[str, str, str]]:
    config = make_config(directory)
    t0 = time.perf_counter()
    if writer:
        fill(config, calls, customers=customers)
    else:
        bulk_fill(config, calls, customers=customers)
    load_s = time.perf_counter() - t0
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    client = create_app(config, reader, clock=lambda: NOW_NS).test_client()
    db = directory / "ledger.db"
    s90 = NOW_NS - 90 * DAY_NS
    api_s, body = timed(lambda: dict(client.get("/api/v1/reports/summary?range=90d").get_json()))
    raw_s, (raw_calls, raw_cost) = timed(lambda: raw_summary(db, s90, NOW_NS))
    assert body["summary"]["calls"] == raw_calls and body["summary"]["cost_usd"] == usd_text(raw_cost)
    s30 = NOW_NS - 30 * DAY_NS
    det_s, detailed = timed(lambda: dict(client.get(
        "/api/v1/reports/detailed?range=30d&group_by=customer&top=10").get_json()))
    rawd_s, by_customer = timed(lambda: raw_by_customer(db, s30, NOW_NS))
    rows = detailed["tables"]["groups"]["rows"]
    assert {r["customer"]: r["cost_usd"] for r in rows} == {k: usd_text(v) for k, v in by_customer.items()}
    reader.close()
    return [
        ("calls stored", f"{calls:,}", f"{'written by the writer' if writer else 'bulk-inserted'} in {load_s:.1f} s"),
        ("90-day summary (API)", f"{api_s * 1000:.0f} ms", f"target <= 1000 ms; {raw_s / api_s:.1f}x faster than raw"),
        ("90-day summary (raw scan)", f"{raw_s * 1000:.0f} ms", "reference, same figures"),
        ("30-day detailed by customer (API)", f"{det_s * 1000:.0f} ms",
         f"target <= 1000 ms; {len(rows)} customers; {rawd_s / det_s:.1f}x raw"),
        ("30-day detailed by customer (raw)", f"{rawd_s * 1000:.0f} ms", "reference, same figures"),
    ]


def bench_csv(directory: Path, calls: int) -> list[tuple[str, str, str]]:
    config = make_config(directory)
    fill(config, calls, seed=2, customers=50)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    code = ("import argparse, resource, sys, threading, os, signal;"
            "from genai_meter.config import load_config; from genai_meter.reports.command import run;"
            f"sys.exit(run(argparse.Namespace(ledger=None, listen='127.0.0.1:{port}'), load_config(sys.argv[1])))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(directory / "config.yaml")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = (f"http://127.0.0.1:{port}/api/v1/reports/detailed?from=2026-08-01T00:00:00Z&to=2026-11-21T00:00:00Z"
               "&format=csv&rows=calls")
        deadline = time.monotonic() + 180
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
                break
            except httpx.ConnectError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start: {proc.communicate(timeout=5)[0]}") from None
                time.sleep(0.2)
        rss_idle = _rss_kib(proc.pid)
        t0 = time.perf_counter()
        lines = 0
        size = 0
        with httpx.stream("GET", url, timeout=600) as response:
            for chunk in response.iter_lines():
                lines += 1
                size += len(chunk) + 1
        took = time.perf_counter() - t0
        peak = _peak_kib(proc.pid)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert lines == calls + 1, lines
    return [("CSV rows streamed", f"{lines - 1:,}", f"{size / 1e6:.0f} MB in {took:.1f} s"),
            ("service RSS before", f"{rss_idle / 1024:.0f} MiB", ""),
            ("service peak RSS", f"{peak / 1024:.0f} MiB", "constant memory: pages of 1,000 calls")]


def _rss_kib(pid: int) -> int:
    return _status(pid, "VmRSS")


def _peak_kib(pid: int) -> int:
    return _status(pid, "VmHWM")


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--csv-calls", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=2000, help="distinct customers (label-set cardinality)")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--writer", action="store_true", help="fill through the ledger writer (slow) instead of SQL")
    parser.add_argument("--skip-csv", action="store_true", help="only the report queries")
    ns = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=ns.dir) as tmp:
        (Path(tmp) / "q").mkdir()
        report("report queries", bench_queries(Path(tmp) / "q", ns.calls, ns.customers, ns.writer))
    if not ns.skip_csv:
        with tempfile.TemporaryDirectory(dir=ns.dir) as tmp:
            report("detailed CSV export", bench_csv(Path(tmp), ns.csv_calls))
    print(f"  (bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
