"""The usage ledger: every metered call, exactly once, durable, queryable (docs/ledger.md).

`open_writer(url, config)` for the receiver (`submit(entries)` -> Future of new/dup bools),
`open_reader(url, config)` for reports, `resolve_url` for where it lives, `migrate` for the serve
parent before its workers start. URLs: `sqlite:///PATH` (embedded default) or
`clickhouse://user:pass@host:port/db` (at scale); schemes in any case. A malformed or unsupported URL
raises `LedgerUrlError` (a ValueError, one line naming the problem).
"""

from __future__ import annotations

from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger.clickhouse_reader import open_clickhouse_reader
from genai_meter.ledger.clickhouse_writer import migrate_clickhouse, open_clickhouse_writer
from genai_meter.ledger.maintenance import RepriceResult, backup, forget, prune, reprice
from genai_meter.ledger.model import (
    BASE_FIELDS,
    MAX_POINTS,
    STEPS,
    CallRow,
    Conversation,
    Coverage,
    Entry,
    Filters,
    Latency,
    LedgerReader,
    LedgerRowRejected,
    LedgerUnavailable,
    LedgerWriter,
    Page,
    Point,
    Totals,
)
from genai_meter.ledger.sqlite_reader import open_sqlite_reader
from genai_meter.ledger.sqlite_schema import LedgerFileGone, migrate_connection, open_write
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from genai_meter.ledger.urls import (
    LedgerOpenError,
    LedgerUrlError,
    check_url,
    clickhouse_target,
    data_dir,
    describe,
    resolve_url,
    sqlite_path,
)


def _sqlite(url: str) -> Path:
    path = sqlite_path(url)  # LedgerUrlError (a ValueError) for a malformed or unsupported URL
    if path is None:  # pragma: no cover - callers asked clickhouse_target first
        raise LedgerUrlError(f"--ledger / ledger.url: {describe(url)!r} is not a SQLite ledger")
    return path


def open_writer(url: str, config: Config) -> LedgerWriter:
    """The writer for `url`, its schema migrated; LedgerOpenError naming the place when it cannot open."""
    target = clickhouse_target(url)
    if target is not None:
        return open_clickhouse_writer(target, config)
    return SQLiteWriter(_sqlite(url), config)


def open_reader(url: str, config: Config, *, interruptible: bool = False) -> LedgerReader:
    """The query interface for `url`; read-only, never migrates, refuses an unknown schema version.

    `interruptible`: a SQLite statement stops once the calling thread's `deadline` has passed (for a
    reader one thread uses only); ClickHouse queries always carry the time left."""
    target = clickhouse_target(url)
    if target is not None:
        return open_clickhouse_reader(target, config)
    return open_sqlite_reader(_sqlite(url), config, interruptible)


def migrate(url: str, config: Config) -> None:
    """Create or upgrade the ledger's schema (the serve parent, once, before its workers start)."""
    target = clickhouse_target(url)
    if target is not None:
        migrate_clickhouse(target, config)
        return
    path = _sqlite(url)
    conn = open_write(path, config.ledger.busy_timeout_seconds)  # migrates
    try:
        migrate_connection(conn, path)
    finally:
        conn.close()


__all__ = ["BASE_FIELDS", "MAX_POINTS", "STEPS", "CallRow", "Conversation", "Coverage", "Entry", "Filters", "Latency",
           "LedgerFileGone", "LedgerOpenError", "LedgerReader", "LedgerRowRejected", "LedgerUnavailable",
           "LedgerUrlError", "LedgerWriter", "Page", "Point", "RepriceResult", "Totals", "backup", "check_url",
           "data_dir", "forget", "migrate", "open_reader", "open_writer", "prune", "reprice", "resolve_url"]
