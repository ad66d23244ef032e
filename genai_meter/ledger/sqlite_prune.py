"""Retention of the SQLite ledger: raw calls past `retention_days` (or the oldest ones above
`max_bytes`) and rollups past `rollup_retention_days`, deleted in bounded batches, each its own
short IMMEDIATE transaction so writers are never blocked for long. Raw calls not rolled up yet (at or
after the hourly watermark, and held late calls) are rolled up in the transaction that deletes them.

The identities (end time, trace id, span id) of deleted calls that ended within
`dedup_horizon_hours` of now are kept in `pruned_calls` by the same transaction, so the writer
answers a pruned call sent again (an OTLP retry, a collector replay) as stored before; each pass
expires the identities older than the horizon. With `max_bytes` they take at most a quarter of it
(`IDENTITY_BYTES` each, counted in `meta`): past that the oldest go first, so raw calls keep the room."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from genai_meter.config import LedgerConfig
from genai_meter.ledger import sqlite_units
from genai_meter.ledger.sqlite_late import fold
from genai_meter.ledger.sqlite_rollups import seal_hours_in

DAY_NS = 86400 * 10**9
PRUNE_BATCH = 5000  # raw rows per transaction
SIZE_BATCH = 1000  # raw rows per transaction when pruning to `max_bytes` (finer: stop close to the limit)
IDENTITY_BYTES = 48  # what one pruned identity takes in the file, about (key 32 bytes, b-tree overhead)
IDENTITY_SHARE = 4  # with `max_bytes`, the pruned identities take at most 1/4 of it
COUNT = "pruned_identities"  # meta: rows in pruned_calls


@dataclass(frozen=True, slots=True)
class Keep:
    """Which pruned identities are kept: those that end at or after `from_ns` (None: none), at most `cap`."""

    from_ns: int | None
    cap: int | None


def keep_policy(config: LedgerConfig, now_ns: int) -> Keep:
    if not config.dedup_horizon_hours:
        return Keep(None, None)
    cap = None if config.max_bytes is None else config.max_bytes // IDENTITY_SHARE // IDENTITY_BYTES
    return Keep(now_ns - round(config.dedup_horizon_hours * 3600 * 10**9), cap)


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the file's pages in use (free pages are reused, so this is what `max_bytes` bounds)."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def _add_count(conn: sqlite3.Connection, delta: int) -> int:
    """Move the identity count in `meta` by `delta` (in the caller's transaction); the new count."""
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                 "value = CAST(MAX(0, CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER)) AS TEXT)",
                 (COUNT, str(delta)))
    return int(conn.execute("SELECT value FROM meta WHERE key = ?", (COUNT,)).fetchone()[0])


def _keep_identities(conn: sqlite3.Connection, last: int, keep: Keep) -> None:
    """Record the identities of the calls up to `last` that `keep` keeps (in the deleting transaction)."""
    if keep.from_ns is None or last < keep.from_ns:
        return
    added = conn.execute("INSERT OR IGNORE INTO pruned_calls (end_ns, trace_id, span_id) SELECT end_ns, trace_id, "
                         "span_id FROM calls WHERE end_ns >= ? AND end_ns <= ?", (keep.from_ns, last)).rowcount
    count = _add_count(conn, added)
    if keep.cap is not None and count > keep.cap:  # the oldest give way
        cut = conn.execute("SELECT end_ns FROM pruned_calls ORDER BY end_ns LIMIT 1 OFFSET ?",
                           (count - keep.cap - 1,)).fetchone()
        if cut is not None:
            _add_count(conn, -conn.execute("DELETE FROM pruned_calls WHERE end_ns <= ?", (cut[0],)).rowcount)


def _delete_batch(conn: sqlite3.Connection, before_ns: int | None, batch: int, keep: Keep) -> int:
    """Delete up to `batch` of the oldest raw calls (only those before `before_ns` when given), keeping the
    identities `keep` says."""
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
        fold(conn)  # held late calls into the rollups before any of them is deleted
        _keep_identities(conn, last, keep)
        cur = conn.execute("DELETE FROM calls WHERE end_ns <= ?", (last,))
        conn.execute("DELETE FROM price_history WHERE end_ns <= ?", (last,))
        sqlite_units.prune_calls(conn, last)
        # the newest prune cutoff, never moved back (a late call pruned later): the writer looks calls before
        # it up among the pruned identities
        conn.execute("INSERT INTO meta (key, value) VALUES ('raw_since_ns', ?) ON CONFLICT (key) DO UPDATE SET "
                     "value = CAST(MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
                     (str(last + 1),))
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
    keep = keep_policy(config, now_ns)
    while max_batches is None or batches < max_batches:
        n = _delete_batch(conn, cutoff, PRUNE_BATCH, keep)
        batches += 1
        deleted += n
        if n == 0:
            break
    while config.max_bytes is not None and used_bytes(conn) > config.max_bytes \
            and (max_batches is None or batches < max_batches):
        n = _delete_batch(conn, None, SIZE_BATCH, keep)
        batches += 1
        deleted += n
        if n == 0:
            break
    rollup_cutoff = now_ns - config.rollup_retention_days * DAY_NS
    conn.execute("BEGIN IMMEDIATE")
    expired = conn.execute("DELETE FROM pruned_calls WHERE end_ns < ?",
                           (now_ns if keep.from_ns is None else keep.from_ns,)).rowcount
    if expired:
        _add_count(conn, -expired)
    fold(conn)  # no held call is rolled up after its rollups expired
    conn.execute("DELETE FROM rollup_hour WHERE bucket < ?", (rollup_cutoff,))
    conn.execute("DELETE FROM rollup_hour_total WHERE bucket < ?", (rollup_cutoff,))  # zeros by the triggers
    conn.execute("DELETE FROM rollup_day WHERE bucket < ?", (rollup_cutoff - rollup_cutoff % DAY_NS,))
    conn.execute("DELETE FROM rollup_field_day WHERE bucket < ?", (rollup_cutoff - rollup_cutoff % DAY_NS,))
    sqlite_units.prune_rollups(conn, rollup_cutoff, rollup_cutoff - rollup_cutoff % DAY_NS)
    conn.execute("COMMIT")
    return deleted
