"""Ledgers for the reports benchmark: realistic calls in the real SQLite schema, cached on disk.

A data set is (calls, customers) over the 90 days before NOW_NS, kept in `<dir>/<calls>-<customers>/`:
`ledger.db` (schema of `sqlite_schema`, migrated by `open_write`, rollups built by the real seal
statement grouped over all hours (`seal_hours_grouped`: the same rows as the per-hour pass, which
scans the label-set dictionary per hour and takes hours here), then the real pass `sqlite_rollups.seal`
for the days), `config.yaml` (dimensions customer, feature, organization) and, made on
demand, `parquet/calls.parquet` + `parquet/labelsets.parquet` (a columnar copy for DuckDB and chdb).
A run that finds `ready` in the directory reuses it.

Shape (numpy, seeded: the same files on every machine):
- customers with Zipf-like sizes: customer = floor(N * u^3) for uniform u (the top 1 % of customers
  make ~22 % of the calls, the top 10 % ~46 %); organizations of ~25 customers;
- 20 features (each of one of 5 services), 8 models of 5 providers; a customer uses 4 features and
  3 models, so 12 label sets of status ok and one of status error (2 % of its calls): 13 label sets
  per customer (130,000 at 10k customers, 1.3M at 100k);
- tokens by class per call, costs = tokens x the model's integer price per token (10^-12 USD);
  0.3 % unpriced calls (no price, no cost); 30 % of calls in a conversation, 40 % with a user.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from genai_meter.ledger.sqlite_rollups import SEAL_HOURS, seal
from genai_meter.ledger.sqlite_schema import HOUR_MARK, open_write

DAY_NS = 86400 * 10**9
HOUR_NS = 3600 * 10**9
NOW_NS = 1_795_176_000 * 10**9  # 2026-11-20T12:00:00Z, the clock of every question
START_NS = NOW_NS - 90 * DAY_NS
FEATURES = 20
SERVICES = 5
# (provider, model, pico per token: input, cache_read, cache_write, output, reasoning)
MODELS = [("openai", "gpt-4o", 2_500_000, 1_250_000, 0, 10_000_000, 0),
          ("openai", "gpt-4o-mini", 150_000, 75_000, 0, 600_000, 0),
          ("openai", "o3", 2_000_000, 500_000, 0, 8_000_000, 8_000_000),
          ("anthropic", "claude-sonnet-4-5", 3_000_000, 300_000, 3_750_000, 15_000_000, 0),
          ("anthropic", "claude-haiku-4-5", 1_000_000, 100_000, 1_250_000, 5_000_000, 0),
          ("gcp.gemini", "gemini-2.5-pro", 1_250_000, 310_000, 0, 10_000_000, 10_000_000),
          ("aws.bedrock", "amazon.nova-pro", 800_000, 200_000, 0, 3_200_000, 0),
          ("mistral", "mistral-large", 2_000_000, 0, 0, 6_000_000, 0)]
SETS_PER_CUSTOMER = 13  # 4 features x 3 models of status ok, one of status error
CHUNK = 250_000


def dataset_dir(root: Path, calls: int, customers: int) -> Path:
    return root / f"{calls}-{customers}"


def write_config(directory: Path) -> Path:
    data = {"dimensions": {"customer": {"attributes": ["customer.id"], "max_values": 5000},
                           "feature": {"attributes": ["feature.id"]},
                           "organization": {"attributes": ["organization.id"]}},
            "ledger": {"url": f"sqlite:///{directory / 'ledger.db'}"}}
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _customer_sets(c: int) -> list[tuple[int, str, str, str, str, str, str]]:
    """(slot, service, provider, model, status, error_type, dims JSON) of customer c's label sets."""
    out = []
    features = [(c * 7 + j * 5) % FEATURES for j in range(4)]
    models = [(c * 3 + k * 3) % len(MODELS) for k in range(3)]
    org = f"org-{c // 25}"
    for slot in range(SETS_PER_CUSTOMER):
        f, m = (features[slot // 3], models[slot % 3]) if slot < 12 else (features[0], models[0])
        dims = json.dumps({"customer": f"cust-{c}", "feature": f"feat-{f}", "organization": org}, sort_keys=True,
                          separators=(",", ":"))
        status, error = ("ok", "") if slot < 12 else ("error", "rate_limit")
        out.append((slot, f"svc-{f % SERVICES}", MODELS[m][0], MODELS[m][1], status, error, dims))
    return out


def _labelsets(customers: int) -> Iterator[tuple[object, ...]]:
    for c in range(customers):
        for slot, service, provider, model, status, error, dims in _customer_sets(c):
            yield (c * SETS_PER_CUSTOMER + slot + 1, service, "prod", provider, model, model, "chat", status, error,
                   dims)


def _model_of_set(customers: int) -> np.ndarray:
    """The MODELS index of every label set id (index 0 unused)."""
    out = np.zeros(customers * SETS_PER_CUSTOMER + 1, dtype=np.int64)
    for c in range(customers):
        models = [(c * 3 + k * 3) % len(MODELS) for k in range(3)]
        for slot in range(SETS_PER_CUSTOMER):
            out[c * SETS_PER_CUSTOMER + slot + 1] = models[slot % 3] if slot < 12 else models[0]
    return out


def _chunk(rng: np.random.Generator, first: int, n: int, total: int, customers: int,
           model_of: np.ndarray) -> list[tuple[object, ...]]:
    """Calls first..first+n-1 as INSERT parameters, in end-time order."""
    idx = np.arange(first, first + n, dtype=np.int64)
    step = (NOW_NS - START_NS) // total
    end = START_NS + idx * step + rng.integers(0, step, n)
    customer = np.minimum((customers * rng.random(n) ** 3).astype(np.int64), customers - 1)
    slot = np.where(rng.random(n) < 0.02, 12, rng.integers(0, 12, n))
    labelset = customer * SETS_PER_CUSTOMER + slot + 1
    model = model_of[labelset]
    t_in = (200 + rng.exponential(1500, n)).astype(np.int64)
    cached = rng.random(n) < 0.3
    t_cr = np.where(cached, (t_in * rng.random(n)).astype(np.int64), 0)
    t_cw = np.where(rng.random(n) < 0.05, (t_in * 0.2).astype(np.int64), 0)
    t_out = (20 + rng.exponential(400, n)).astype(np.int64)
    price = np.array([[m[2], m[3], m[4], m[5], m[6]] for m in MODELS], dtype=np.int64)[model]
    t_rs = np.where(price[:, 4] > 0, (t_out * 2 * rng.random(n)).astype(np.int64), 0)
    unpriced = rng.random(n) < 0.003
    tokens = np.stack([t_in, t_cr, t_cw, t_out, t_rs], axis=1)
    costs = np.where(unpriced[:, None], 0, tokens * price)
    price_id = np.where(unpriced, len(MODELS) + 1, model + 1)
    duration = (200_000 + rng.exponential(1_500_000, n)).astype(np.int64)
    conv = rng.random(n) < 0.3
    user = rng.random(n) < 0.4
    span = rng.integers(1, 2**62, n)
    cols = [end.tolist(), idx.tolist(), span.tolist(), labelset.tolist(), conv.tolist(), (idx // 6).tolist(),
            user.tolist(), customer.tolist(), duration.tolist(), *tokens.T.tolist(), *costs.T.tolist(),
            price_id.tolist(), unpriced.tolist()]
    rows = []
    for (e, i, sp, ls, cv, ci, us, cu, du, ti, tcr, tcw, to, tr, ci_, ccr, ccw, co, cr, pid, up) in zip(*cols):
        rows.append((e, i.to_bytes(16, "big"), sp.to_bytes(8, "big"), b"", ls, f"conv-{ci}" if cv else "",
                     f"user-{cu}-{i % 7}" if us else "", du, None, ti, tcr, tcw, to, tr, ci_, ccr, ccw, co, cr, 0,
                     0, pid, int(up), "", "", 1_000_000))
    return rows


INSERT = ("INSERT INTO calls (end_ns, trace_id, span_id, parent_span_id, labelset, conversation, user, duration_us, "
          "ttft_us, t_input, t_cache_read, t_cache_write, t_output, t_reasoning, c_input, c_cache_read, "
          "c_cache_write, c_output, c_reasoning, c_request, list_cost, price, unpriced, unmetered, invalid, "
          "weight_micro) VALUES (" + ", ".join("?" * 26) + ")")


def grouped_seal_sql() -> str:
    """The hourly seal statement (`sqlite_rollups.SEAL_HOURS`): one statement grouped by (hour, label set)."""
    return SEAL_HOURS


def seal_hours_grouped(conn: sqlite3.Connection, until_ns: int) -> None:
    """Roll every call before `until_ns` up into `rollup_hour` in one statement and move the hourly
    watermark there (the real per-hour pass scans the whole label-set dictionary once per hour)."""
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(grouped_seal_sql(), (0, until_ns))
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (HOUR_MARK, str(until_ns)))
    conn.execute("COMMIT")


def seal_all(conn: sqlite3.Connection, until_ns: int) -> None:
    """The writer's own seal pass, repeated until every hour before `until_ns` and every day before its
    midnight is sealed (a pass moves the day watermark by at most a week)."""
    while True:
        hours, days = seal(conn, until_ns)
        if hours >= until_ns and days >= until_ns - until_ns % DAY_NS:
            return


def generate(directory: Path, calls: int, customers: int, seed: int = 21, grouped: bool = True) -> dict[str, float]:
    """Fill `directory/ledger.db` (bulk INSERT in end-time order, then the hours sealed by one grouped
    statement, or by the real pass when not `grouped`, and the days by the real pass, until every hour
    before NOW_NS and every day before its midnight is sealed); returns the seconds of each step."""
    directory.mkdir(parents=True, exist_ok=True)
    write_config(directory)
    db = directory / "ledger.db"
    for stale in (db, directory / "ledger.db-wal", directory / "ledger.db-shm", directory / "ready"):
        stale.unlink(missing_ok=True)
    conn = open_write(db, 60.0)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-524288")
    took: dict[str, float] = {}
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO prices (id, source, version, entry, unit_prices) VALUES (?, ?, ?, ?, ?)",
                     [(k + 1, "genai-prices", "bench", f"{m[0]}/{m[1]}",
                       json.dumps({"input": str(m[2] / 10**6), "output": str(m[5] / 10**6)}))
                      for k, m in enumerate(MODELS)] + [(len(MODELS) + 1, "", "", "", "{}")])
    conn.executemany("INSERT INTO labelsets (id, service, environment, provider, model, request_model, operation, "
                     "status, error_type, dims) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _labelsets(customers))
    conn.execute("COMMIT")
    rng = np.random.default_rng(seed)
    model_of = _model_of_set(customers)
    for first in range(0, calls, CHUNK):
        rows = _chunk(rng, first, min(CHUNK, calls - first), calls, customers, model_of)
        conn.execute("BEGIN")
        conn.executemany(INSERT, rows)
        conn.execute("COMMIT")
    took["insert"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if grouped:
        seal_hours_grouped(conn, NOW_NS)
        took["seal_hours"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    seal_all(conn, NOW_NS)
    took["seal_days"] = time.perf_counter() - t0
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    (directory / "ready").write_text(json.dumps(took))
    return took


def ensure(root: Path, calls: int, customers: int) -> tuple[Path, dict[str, float], bool]:
    """The data set's directory, generating it unless cached: (dir, seconds per step, generated now)."""
    directory = dataset_dir(root, calls, customers)
    ready = directory / "ready"
    if ready.is_file():
        write_config(directory)  # the ledger URL names the directory, which may have moved
        steps = json.loads(ready.read_text())
        t0 = time.perf_counter()
        conn = open_write(directory / "ledger.db", 600.0)  # a cached file of an earlier schema is migrated
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        steps["open_migrate"] = round(time.perf_counter() - t0, 1)
        return directory, steps, False
    return directory, generate(directory, calls, customers), True


def ensure_parquet(directory: Path, engine: Any = None) -> tuple[Path, float]:
    """A Parquet copy of `calls` (money and ids as stored) and `labelsets` with the dimensions as columns,
    written by chdb straight from the SQLite file; (parquet dir, seconds, 0 when cached)."""
    import chdb  # heavy: only the columnar comparisons need it
    run: Any = engine or chdb  # a session of the caller's (one chdb engine per process)
    out = directory / "parquet"
    if (out / "ready").is_file():
        return out, 0.0
    out.mkdir(exist_ok=True)
    db = directory / "ledger.db"
    t0 = time.perf_counter()
    calls = out / "calls.parquet"
    sets = out / "labelsets.parquet"
    for f in (calls, sets):
        f.unlink(missing_ok=True)
    run.query(f"INSERT INTO FUNCTION file('{calls}', Parquet) SELECT end_ns, hex(trace_id) AS trace_id, "
               f"hex(span_id) AS span_id, labelset, conversation, user, duration_us, t_input, t_cache_read, "
               f"t_cache_write, t_output, t_reasoning, c_input, c_cache_read, c_cache_write, c_output, c_reasoning, "
               f"c_request, list_cost, price, unpriced, weight_micro FROM sqlite('{db}', 'calls') "
               f"SETTINGS output_format_parquet_row_group_size = 1000000")
    run.query(f"INSERT INTO FUNCTION file('{sets}', Parquet) SELECT id, service, environment, provider, model, "
               f"operation, status, error_type, JSONExtractString(dims, 'customer') AS customer, "
               f"JSONExtractString(dims, 'feature') AS feature, JSONExtractString(dims, 'organization') "
               f"AS organization FROM sqlite('{db}', 'labelsets')")
    (out / "ready").write_text("")
    return out, time.perf_counter() - t0
