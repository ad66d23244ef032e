"""Retention of the SQLite ledger: raw calls past `retention_days` (or the oldest ones above
`max_bytes`) and rollups past `rollup_retention_days`, deleted in bounded batches, each its own
short IMMEDIATE transaction so writers are never blocked for long. Raw calls not rolled up yet (at or
after the hourly watermark) are sealed into the hourly rollups in the transaction that deletes them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from genai_meter.config import LedgerConfig
from genai_meter.ledger.sqlite_rollups import seal_hours_in

DAY_NS = 86400 * 10**9
PRUNE_BATCH = 5000  # raw rows per transaction
SIZE_BATCH = 1000  # raw rows per transaction when pruning to `max_bytes` (finer: stop close to the limit)


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the file's pages in use (free pages are reused, so this is what `max_bytes` bounds)."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def _delete_batch(conn: sqlite3.Connection, before_ns: int | None, batch: int = PRUNE_BATCH) -> int:
    """Delete up to `batch` of the oldest raw calls (only those before `before_ns` when given)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        where = "" if before_ns is None else "WHERE end_ns < ?"
        params: tuple[int, ...] = () if before_ns is None else (before_ns,)
        last = conn.execute(f"SELECT MAX(end_ns) FROM (SELECT end_ns FROM calls {where} ORDER BY end_ns LIMIT ?)",
                            (*params, batch)).fetchone()[0]
        if last is None:
            conn.execute("COMMIT")
            return 0
        while seal_hours_in(conn, last + 1) <= last:  # at most about `batch` calls: those deleted here
            pass
        cur = conn.execute("DELETE FROM calls WHERE end_ns <= ?", (last,))
        conn.execute("DELETE FROM price_history WHERE end_ns <= ?", (last,))
        conn.execute("INSERT INTO meta (key, value) VALUES ('raw_since_ns', ?) ON CONFLICT (key) DO UPDATE SET "
                     "value = excluded.value", (str(last + 1),))
        conn.execute("COMMIT")
        return int(cur.rowcount)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def prune_connection(conn: sqlite3.Connection, path: Path, config: LedgerConfig, now_ns: int,
                     max_batches: int | None = None) -> int:
    """One pruning pass on a writing connection; returns the raw calls deleted. `max_batches` bounds
    the work (the writer thread does a few batches per minute; the CLI runs to the end)."""
    deleted = 0
    batches = 0
    cutoff = now_ns - config.retention_days * DAY_NS
    while max_batches is None or batches < max_batches:
        n = _delete_batch(conn, cutoff)
        batches += 1
        deleted += n
        if n == 0:
            break
    while config.max_bytes is not None and used_bytes(conn) > config.max_bytes \
            and (max_batches is None or batches < max_batches):
        n = _delete_batch(conn, None, SIZE_BATCH)
        batches += 1
        deleted += n
        if n == 0:
            break
    rollup_cutoff = now_ns - config.rollup_retention_days * DAY_NS
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DELETE FROM rollup_hour WHERE bucket < ?", (rollup_cutoff,))
    conn.execute("DELETE FROM rollup_day WHERE bucket < ?", (rollup_cutoff - rollup_cutoff % DAY_NS,))
    conn.execute("DELETE FROM rollup_field_day WHERE bucket < ?", (rollup_cutoff - rollup_cutoff % DAY_NS,))
    conn.execute("COMMIT")
    return deleted
