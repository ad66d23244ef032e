"""A large SQLite ledger made quickly: label sets, prices and calls inserted by SQL in one transaction.

The hourly and daily rollups are left unsealed (the ledger's watermarks stay at 0), so every report
reads the raw calls: the heaviest path the service has, which is what the load tests need. The
figures are still exact (every reader answers from the raw rows before any seal).
"""

from __future__ import annotations

import json
from pathlib import Path

from genai_meter.ledger.sqlite_schema import open_write

DAY_NS = 86400 * 10**9
MODELS = (("openai", "gpt-4o"), ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"))
PICO_IN, PICO_OUT = 250_000_000, 1_500_000_000  # per call: 0.00025 and 0.0015 USD


def seed_ledger(path: Path, calls: int, customers: int, end_ns: int, days: int = 90, pad: int = 0) -> None:
    """`calls` calls spread over the `days` before `end_ns`, each of a random customer (of `customers`)
    and model; `pad` characters of filler make every customer and feature value longer (wide CSV rows)."""
    conn = open_write(path, 30.0)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO prices (id, source, version, entry, unit_prices) VALUES (?, 'genai-prices', "
                         "'seed', ?, '{}')", [(k + 1, f"{p}/{m}") for k, (p, m) in enumerate(MODELS)])
        filler = "x" * pad
        conn.executemany(
            "INSERT INTO labelsets (id, service, environment, provider, model, request_model, operation, status, "
            "error_type, dims) VALUES (?, 'web', 'prod', ?, ?, ?, 'chat', 'ok', '', ?)",
            ((c * len(MODELS) + k + 1, p, m, m,
              json.dumps({"customer": f"c-{c}{filler}", "feature": f"f-{c % 20}{filler}",
                          "organization": f"org-{c % 4}"}, sort_keys=True, separators=(",", ":")))
             for c in range(customers) for k, (p, m) in enumerate(MODELS)))
        span = days * DAY_NS
        conn.execute(
            "INSERT INTO calls (end_ns, trace_id, span_id, parent_span_id, labelset, conversation, user, duration_us, "
            "ttft_us, t_input, t_cache_read, t_cache_write, t_output, t_reasoning, c_input, c_cache_read, "
            "c_cache_write, c_output, c_reasoning, c_request, list_cost, price, unpriced, unmetered, invalid, "
            "weight_micro) "
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?), "
            "     r(i, ls) AS (SELECT i, abs(random()) % ? FROM n) "
            "SELECT ? - 1 - abs(random()) % ?, CAST(printf('%032x', i) AS BLOB), X'00000000000000a1', X'', ls + 1, "
            "'', '', 400000, NULL, 1000, 0, 0, 100, 0, ?, 0, 0, ?, 0, 0, ?, ls % ? + 1, 0, '', '', 1000000 FROM r",
            (calls, customers * len(MODELS), end_ns, span, PICO_IN, PICO_OUT, PICO_IN + PICO_OUT, len(MODELS)))
        conn.execute("COMMIT")
    finally:
        conn.close()
