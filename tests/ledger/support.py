"""Helpers of the ledger tests: calls and entries with exact costs, built without the pipeline."""

from __future__ import annotations

import random
import sqlite3
from decimal import Decimal
from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger.model import Entry
from genai_meter.ledger.sqlite_rollups import seal
from genai_meter.ledger.sqlite_schema import open_write, rollup_columns
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from genai_meter.records import Cost, LLMCall, TokenCounts

HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


def make_call(i: int, end_ns: int, *, model: str = "gpt-4o", provider: str = "openai", service: str = "svc",
              customer: str = "", feature: str = "", conversation: str = "", user: str = "", status: str = "ok",
              tokens: tuple[int, int, int, int, int] = (100, 10, 0, 50, 0), duration_s: float = 1.25,
              invalid: str = "", trace: int | None = None) -> LLMCall:
    dims = {k: v for k, v in (("customer", customer), ("feature", feature)) if v}
    tid = (trace if trace is not None else i).to_bytes(16, "big")
    return LLMCall(service=service, environment="prod", provider=provider, model=model, operation="chat",
                   status=status, error_type="" if status == "ok" else "timeout", duration_s=duration_s,
                   ttft_s=0.25, tokens=TokenCounts(*tokens), end_ns=end_ns, dimensions=dims, invalid=invalid,
                   request_model=model, trace_id=tid, span_id=(i + 1).to_bytes(8, "big"), conversation_id=conversation,
                   user_id=user)


def make_cost(usd_by_class: dict[str, str]) -> Cost:
    by = {k: Decimal(v) for k, v in usd_by_class.items()}
    return Cost(by_type=by, price_source="genai-prices", price_version="0.0.1", price_entry="openai/gpt-4o",
                unit_prices={"input": Decimal("2.5"), "output": Decimal("10")})


def entry(i: int, end_ns: int, usd: str = "0.000123456789012", **kw: object) -> Entry:
    call = make_call(i, end_ns, **kw)  # type: ignore[arg-type]
    if call.invalid:
        return Entry(call, None)
    return Entry(call, make_cost({"input": usd, "output": "0.0000015", "request": "0"}))


def random_entries(seed: int, n: int, start_ns: int, span_ns: int) -> list[Entry]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        end = start_ns + rnd.randrange(span_ns)
        usd = f"{rnd.randrange(10**12) / 10**6:.6f}{rnd.randrange(10**6):06d}"  # up to $1M, 12 decimals
        kw: dict[str, object] = dict(model=rnd.choice(["gpt-4o", "gpt-4o-mini", "claude"]), customer=rnd.choice(["", "acme", "zeta"]),
                  feature=rnd.choice(["search", "chat"]), conversation=rnd.choice(["", "c1", "c2", "c3"]),
                  user=rnd.choice(["", "alice", "bob"]), status=rnd.choice(["ok", "ok", "error"]),
                  tokens=tuple(rnd.randrange(5000) for _ in range(5)), duration_s=rnd.randrange(1, 10**7) / 10**6)
        if rnd.random() < 0.05:
            kw["invalid"] = "negative"
        out.append(entry(i, end, usd, **kw))
    return out


def ledger_config(**ledger: object) -> Config:
    """The default config with these `ledger` settings."""
    config = Config()
    return config.model_copy(update={"ledger": config.ledger.model_copy(update=ledger)})


def count_rows(path: Path, table: str = "calls") -> int:
    """Rows of `table` in the ledger file at `path`."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def hour_totals(path: Path) -> tuple[dict[int, tuple[int, ...]], dict[int, tuple[int, ...]]]:
    """(`rollup_hour_total`, `rollup_hour` summed per hour), money as whole integers: equal when the
    triggers kept the totals; hours with no calls left (all taken away) are dropped."""
    cols = rollup_columns()
    conn = sqlite3.connect(path)
    total = conn.execute(f"SELECT bucket, {', '.join(cols)} FROM rollup_hour_total").fetchall()
    summed = conn.execute(f"SELECT bucket, {', '.join(f'SUM({c})' for c in cols)} FROM rollup_hour "
                          "GROUP BY bucket").fetchall()
    conn.close()

    def whole(rows: list[tuple[int, ...]]) -> dict[int, tuple[int, ...]]:
        out = {}
        for bucket, *values in rows:
            merged = [(values[i] << 32) + values[i + 1] if cols[i].endswith("_hi") else values[i]
                      for i in range(len(cols)) if not cols[i].endswith("_lo")]
            if any(merged):
                out[bucket] = tuple(merged)
        return out

    return whole(total), whole(summed)


def write_acknowledged(path: Path, entries: list[Entry], config: Config | None = None) -> None:
    """Store `entries` through the SQLite writer in requests of 100, each acknowledged in full."""
    writer = SQLiteWriter(path, config or Config())
    for i in range(0, len(entries), 100):
        assert writer.submit(entries[i:i + 100]).result(30) == [True] * len(entries[i:i + 100])
    writer.close()


def seal_until(path: Path, until: int) -> None:
    """Seal the file's hours up to `until` and its whole days before it (pass after pass)."""
    conn = open_write(path, 5.0)
    while (marks := seal(conn, until))[0] < until or marks[1] < until - until % DAY_NS:
        pass
    conn.close()
