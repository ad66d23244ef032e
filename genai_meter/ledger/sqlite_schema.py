"""The SQLite ledger's schema, its forward-only migrations and the opening of connections.

Version N of the schema is `MIGRATIONS[0..N-1]` applied in order; `schema_version` holds the
number. Writers migrate (the serve parent once, before its workers start); readers never do, and
refuse a file whose version they do not know.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from genai_meter.ledger import deadline, sqlite_units
from genai_meter.ledger.model import FILE_GONE, LedgerUnavailable
from genai_meter.ledger.rows import COST_CLASSES, LABEL_FIELDS, SUM_NAMES, TOKEN_CLASSES
from genai_meter.ledger.urls import LedgerOpenError

MASK32 = 0xFFFFFFFF
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
WRITER_CACHE_KIB = 65536
AUTOCHECKPOINT_PAGES = 16384  # a safety net only: the writer checkpoints every second itself
HOUR_MARK = "hour_rollups_until_ns"  # meta: rollup_hour holds exactly the calls that end before this

_MONEY = {f"c_{c}" for c in COST_CLASSES} | {"list_cost"}


class LedgerFileGone(LedgerOpenError, LedgerUnavailable):
    """The ledger file is not there (never made, moved away, deleted) or was replaced: to a command that
    starts, a LedgerOpenError naming the path; to a running service, LedgerUnavailable (kind FILE_GONE)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, FILE_GONE)


def rollup_columns() -> list[str]:
    """Rollup sum columns: money split into _hi (x 2^32) and _lo (< 2^32) so sums never overflow."""
    cols: list[str] = []
    for name in SUM_NAMES:
        cols.extend((f"{name}_hi", f"{name}_lo") if name in _MONEY else (name,))
    return cols


def _rollup_table(name: str) -> str:
    cols = ",\n  ".join(f"{c} INTEGER NOT NULL" for c in rollup_columns())
    return (f"CREATE TABLE {name} (\n  bucket INTEGER NOT NULL,\n  labelset INTEGER NOT NULL,\n  {cols},\n"
            f"  PRIMARY KEY (bucket, labelset)\n) WITHOUT ROWID")


_LABEL_COLS = ", ".join(f"{f} TEXT NOT NULL" for f in LABEL_FIELDS)
_V1 = [
    f"CREATE TABLE labelsets (id INTEGER PRIMARY KEY, {_LABEL_COLS}, dims TEXT NOT NULL, "
    f"UNIQUE ({', '.join(LABEL_FIELDS)}, dims))",
    "CREATE TABLE prices (id INTEGER PRIMARY KEY, source TEXT NOT NULL, version TEXT NOT NULL, entry TEXT NOT NULL, "
    "unit_prices TEXT NOT NULL, UNIQUE (source, version, entry, unit_prices))",
    "CREATE TABLE calls (\n  end_ns INTEGER NOT NULL, trace_id BLOB NOT NULL, span_id BLOB NOT NULL,\n"
    "  parent_span_id BLOB NOT NULL, labelset INTEGER NOT NULL, conversation TEXT NOT NULL, user TEXT NOT NULL,\n"
    "  duration_us INTEGER NOT NULL, ttft_us INTEGER,\n  "
    + ", ".join(f"t_{c} INTEGER NOT NULL" for c in TOKEN_CLASSES) + ",\n  "
    + ", ".join(f"c_{c} INTEGER NOT NULL" for c in COST_CLASSES) + ",\n"
    "  list_cost INTEGER NOT NULL, price INTEGER NOT NULL, unpriced INTEGER NOT NULL, unmetered TEXT NOT NULL,\n"
    "  invalid TEXT NOT NULL, weight_micro INTEGER NOT NULL,\n"
    "  PRIMARY KEY (end_ns, trace_id, span_id)\n) WITHOUT ROWID",
    "CREATE UNIQUE INDEX calls_identity ON calls (trace_id, span_id)",
    "CREATE INDEX calls_conversation ON calls (conversation, end_ns) WHERE conversation <> ''",
    "CREATE INDEX calls_user ON calls (user, end_ns) WHERE user <> ''",
    _rollup_table("rollup_hour"),
    _rollup_table("rollup_day"),
]
_V2 = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE reprices (id INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, start_ns INTEGER NOT NULL, "
    "end_ns INTEGER NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, price_version TEXT NOT NULL, "
    "calls INTEGER NOT NULL, old_total TEXT NOT NULL, new_total TEXT NOT NULL)",
    "CREATE TABLE price_history (trace_id BLOB NOT NULL, span_id BLOB NOT NULL, reprice INTEGER NOT NULL, "
    "end_ns INTEGER NOT NULL, price INTEGER NOT NULL, unpriced INTEGER NOT NULL, "
    + ", ".join(f"c_{c} INTEGER NOT NULL" for c in COST_CLASSES)
    + ", list_cost INTEGER NOT NULL, PRIMARY KEY (trace_id, span_id, reprice)) WITHOUT ROWID",
    "ALTER TABLE calls ADD COLUMN cache_write_1h INTEGER NOT NULL DEFAULT 0",  # re-pricing needs the 1h rate flag
]


def field_rollup_sql(where: str, source: str = "rollup_day") -> list[str]:
    """INSERT ... SELECT statements adding to `rollup_field_day` the rows of `source` (`rollup_day`, or a
    table of the same columns holding day deltas) matching `where` (a condition on `r.bucket` with `?`
    placeholders, the same parameters for each): one row per day and base label set (field '', value the
    JSON array of LABEL_FIELDS) and one per day, dimension and value."""
    cols = rollup_columns()
    sums = ", ".join(f"SUM(r.{c})" for c in cols)
    labels = ", ".join(f"l.{f}" for f in LABEL_FIELDS)
    head = f"INSERT INTO rollup_field_day (bucket, field, value, {', '.join(cols)}) "
    tail = f" ON CONFLICT (field, bucket, value) DO UPDATE SET {', '.join(f'{c} = {c} + excluded.{c}' for c in cols)}"
    return [head + f"SELECT r.bucket, '', json_array({labels}), {sums} FROM {source} r JOIN labelsets l "
            f"ON l.id = r.labelset WHERE {where} GROUP BY 1, 3" + tail,
            head + f"SELECT r.bucket, j.key, j.value, {sums} FROM {source} r JOIN labelsets l ON l.id = r.labelset, "
            f"json_each(l.dims) j WHERE {where} AND j.type = 'text' GROUP BY 1, 2, 3" + tail]


# V3: daily rollups per field (the base label set, or one dimension's value): a report that groups or
# filters by base fields only, or by one dimension alone, reads a few rows per day whatever the label-set
# cardinality (many customers x features x models). Filled from rollup_day when days are sealed.
_V3 = [
    "CREATE TABLE rollup_field_day (\n  bucket INTEGER NOT NULL,\n  field TEXT NOT NULL,\n  value TEXT NOT NULL,\n  "
    + ",\n  ".join(f"{c} INTEGER NOT NULL" for c in rollup_columns())
    + ",\n  PRIMARY KEY (field, bucket, value)\n) WITHOUT ROWID",
    *field_rollup_sql("r.bucket >= 0"),
]
# V4: a call's identity is (end time, trace id, span id), the primary key: a retried or re-sent span carries
# the same end time, so the writer finds it through the primary key (recent, appended pages) instead of the
# unique (trace_id, span_id) index, whose random-order inserts dirtied about one page per call. The price
# history is keyed by the same identity (two calls with one span id and different end times are two calls).
_V4 = [
    "DROP INDEX IF EXISTS calls_identity",
    "CREATE TABLE price_history_v4 (end_ns INTEGER NOT NULL, trace_id BLOB NOT NULL, span_id BLOB NOT NULL, "
    "reprice INTEGER NOT NULL, price INTEGER NOT NULL, unpriced INTEGER NOT NULL, "
    + ", ".join(f"c_{c} INTEGER NOT NULL" for c in COST_CLASSES)
    + ", list_cost INTEGER NOT NULL, PRIMARY KEY (end_ns, trace_id, span_id, reprice)) WITHOUT ROWID",
    "INSERT INTO price_history_v4 (end_ns, trace_id, span_id, reprice, price, unpriced, "
    + ", ".join(f"c_{c}" for c in COST_CLASSES) + ", list_cost) SELECT end_ns, trace_id, span_id, reprice, price, "
    "unpriced, " + ", ".join(f"c_{c}" for c in COST_CLASSES) + ", list_cost FROM price_history",
    "DROP TABLE price_history",
    "ALTER TABLE price_history_v4 RENAME TO price_history",
]
# V5: the hourly rollups are sealed from the raw calls behind a watermark (sqlite_rollups), no longer upserted
# with every batch. Every call stored so far was rolled up by its batch: the watermark starts after the last
# one (and not before the day watermark: hours are sealed only into days not sealed yet); a new file has 0.
# A writer of an earlier version still running when the file is migrated would go on adding its batches to
# the rollups, which the seal pass then adds again: rollup rows can now be written only by connections that
# define WRITER_FUNCTION (`open_write` of this version), so such a writer's batches fail (its clients are
# answered "unavailable" and retry against the new one) instead of being counted twice.
WRITER_FUNCTION = "genai_meter_rollup_writer_v5"
_V5 = [
    f"INSERT INTO meta (key, value) SELECT '{HOUR_MARK}', CAST(MAX(COALESCE((SELECT MAX(end_ns) + 1 FROM calls), 0), "
    "COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'day_rollups_until_ns'), 0)) AS TEXT)",
    *(f"CREATE TRIGGER IF NOT EXISTS {table}_writers BEFORE INSERT ON {table} BEGIN SELECT {WRITER_FUNCTION}(); END"
      for table in ("rollup_hour", "rollup_day")),
]
# V6: dictionary ids are never reused, and every deletion (or change) of a dictionary row moves a generation
# number. SQLite gives a deleted highest rowid to the next insert, so a label set inserted after `forget`
# deleted the newest one took its id, and a cache of id -> labels (a report service's reader, a running
# writer's `Dictionaries`) filed the new label set's calls under the forgotten one. AUTOINCREMENT never
# reuses an id; the tables are rebuilt with it, every id kept. The triggers bump `dictionary_generation`
# in `meta` in the deleting transaction itself, whoever deletes; caches check it and drop what they hold.
# `pruned_calls` keeps the identities of pruned calls for the retry horizon (`ledger.dedup_horizon_hours`):
# a call pruned and then sent again (an OTLP retry, a collector replay) is known as stored.
GENERATION = "dictionary_generation"
_AUTOINCREMENT = {
    "labelsets": f"id INTEGER PRIMARY KEY AUTOINCREMENT, {_LABEL_COLS}, dims TEXT NOT NULL, "
                 f"UNIQUE ({', '.join(LABEL_FIELDS)}, dims)",
    "prices": "id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, version TEXT NOT NULL, "
              "entry TEXT NOT NULL, unit_prices TEXT NOT NULL, UNIQUE (source, version, entry, unit_prices)",
}
_V6 = [
    *(statement for table, columns in _AUTOINCREMENT.items() for statement in (
        f"CREATE TABLE {table}_v6 ({columns})",
        f"INSERT INTO {table}_v6 SELECT * FROM {table} ORDER BY id",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_v6 RENAME TO {table}",
    )),
    f"INSERT OR IGNORE INTO meta (key, value) VALUES ('{GENERATION}', '0')",
    *(f"CREATE TRIGGER IF NOT EXISTS {table}_{event.lower()}_generation AFTER {event} ON {table} BEGIN UPDATE meta SET "
      f"value = CAST(value AS INTEGER) + 1 WHERE key = '{GENERATION}'; END"
      for table in _AUTOINCREMENT for event in ("DELETE", "UPDATE")),
    "CREATE TABLE IF NOT EXISTS pruned_calls (end_ns INTEGER NOT NULL, trace_id BLOB NOT NULL, span_id BLOB NOT NULL, "
    "PRIMARY KEY (end_ns, trace_id, span_id)) WITHOUT ROWID",
]
# V7: billed units per call and in the rollups, by name through a unit dictionary (sqlite_units); the service
# tier and the batch flag live in the label sets (reserved dimensions), so they need no table of their own.
_V7 = sqlite_units.V7
# V8: the providers' own usage and cost reports (genai-meter reconcile import / pull): one row per
# (provider, UTC day, report kind) a report covers, and its lines (ledger.sqlite_provider_lines).
_V8 = [
    "CREATE TABLE IF NOT EXISTS provider_reports (provider TEXT NOT NULL, day TEXT NOT NULL, kind TEXT NOT NULL, "
    "states_cost INTEGER NOT NULL, lines INTEGER NOT NULL, source TEXT NOT NULL, imported_ns INTEGER NOT NULL, "
    "PRIMARY KEY (provider, day, kind)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS provider_lines (provider TEXT NOT NULL, day TEXT NOT NULL, kind TEXT NOT NULL, "
    "seq INTEGER NOT NULL, model TEXT NOT NULL, model_key TEXT NOT NULL, project TEXT NOT NULL, "
    "api_key_id TEXT NOT NULL, service_tier TEXT NOT NULL, batch INTEGER, served_by TEXT NOT NULL, "
    "line_item TEXT NOT NULL, requests INTEGER, t_input INTEGER NOT NULL, t_cache_read INTEGER NOT NULL, "
    "t_cache_write INTEGER NOT NULL, t_output INTEGER NOT NULL, t_reasoning INTEGER NOT NULL, "
    "cache_write_1h INTEGER NOT NULL, folded TEXT NOT NULL, units TEXT NOT NULL, cost_pico INTEGER, "
    "currency TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (provider, day, kind, seq)) WITHOUT ROWID",
]
# V9: the read path answers in SQL from per-field rollups. `labelset_dims` holds one row per dimension of a
# label set (kept by triggers, whoever writes the dictionary): a filter or group by a dimension joins it
# instead of parsing every label set's JSON. `rollup_field_day` is also indexed by value (one value's days),
# and `field_day_rows` counts, per day and field, the rollup rows and their calls: the planner's statistics
# (a field whose rows are about as many as its calls is read from raw calls instead).
_DIMS_OF = "SELECT j.key, j.value, {id} FROM json_each({dims}) j WHERE j.type = 'text'"
_V9 = [
    "CREATE TABLE IF NOT EXISTS labelset_dims (field TEXT NOT NULL, value TEXT NOT NULL, labelset INTEGER NOT NULL, "
    "PRIMARY KEY (field, value, labelset)) WITHOUT ROWID",
    "INSERT OR IGNORE INTO labelset_dims SELECT j.key, j.value, l.id FROM labelsets l, json_each(l.dims) j "
    "WHERE j.type = 'text'",
    "CREATE INDEX IF NOT EXISTS labelset_dims_by_set ON labelset_dims (labelset, field, value)",
    "CREATE TRIGGER IF NOT EXISTS labelsets_insert_dims AFTER INSERT ON labelsets BEGIN "
    "INSERT OR IGNORE INTO labelset_dims " + _DIMS_OF.format(id="NEW.id", dims="NEW.dims") + "; END",
    "CREATE TRIGGER IF NOT EXISTS labelsets_delete_dims AFTER DELETE ON labelsets BEGIN DELETE FROM labelset_dims "
    "WHERE labelset = OLD.id; END",
    "CREATE TRIGGER IF NOT EXISTS labelsets_update_dims AFTER UPDATE OF dims ON labelsets BEGIN "
    "DELETE FROM labelset_dims WHERE labelset = OLD.id; INSERT OR IGNORE INTO labelset_dims "
    + _DIMS_OF.format(id="NEW.id", dims="NEW.dims")
    + "; END",
    "CREATE INDEX IF NOT EXISTS rollup_field_day_by_value ON rollup_field_day (field, value, bucket)",
    "CREATE TABLE IF NOT EXISTS field_day_rows (field TEXT NOT NULL, bucket INTEGER NOT NULL, "
    "rows INTEGER NOT NULL, calls INTEGER NOT NULL, PRIMARY KEY (field, bucket)) WITHOUT ROWID",
    "INSERT OR REPLACE INTO field_day_rows SELECT field, bucket, COUNT(*), SUM(calls) FROM rollup_field_day "
    "GROUP BY 1, 2",
]
# V10: `rollup_hour_total`, the hourly sums over every label set, kept equal to `rollup_hour` by triggers (so
# every writer of rollup_hour, seal, late calls, re-pricing, prune and forget, keeps it without knowing it).
# An hourly series with no filter and no group (the trend's heatmap over 90 days) reads one row per hour
# instead of one per (hour, label set). Money sums are kept as (hi, lo) pairs unnormalised: lo is the sum of
# the rows' lo parts, exact while an hour holds fewer than 2^31 rollup rows.
_TOTAL_COLS = rollup_columns()


def _total_upsert(row: str, sign: str) -> str:
    """Add (`sign` '+') or take away ('-') rollup row `row` (NEW or OLD) from its hour's totals."""
    values = ", ".join(f"{sign}{row}.{c}" for c in _TOTAL_COLS)
    sets = ", ".join(f"{c} = {c} + excluded.{c}" for c in _TOTAL_COLS)
    return (f"INSERT INTO rollup_hour_total (bucket, {', '.join(_TOTAL_COLS)}) VALUES ({row}.bucket, {values}) "
            f"ON CONFLICT (bucket) DO UPDATE SET {sets};")


_V10 = [
    "CREATE TABLE IF NOT EXISTS rollup_hour_total (bucket INTEGER PRIMARY KEY, "
    + ", ".join(f"{c} INTEGER NOT NULL" for c in _TOTAL_COLS) + ")",
    f"INSERT OR REPLACE INTO rollup_hour_total SELECT bucket, {', '.join(f'SUM({c})' for c in _TOTAL_COLS)} "
    "FROM rollup_hour GROUP BY bucket",
    f"CREATE TRIGGER IF NOT EXISTS rollup_hour_total_insert AFTER INSERT ON rollup_hour BEGIN "
    f"{_total_upsert('NEW', '')} END",
    f"CREATE TRIGGER IF NOT EXISTS rollup_hour_total_update AFTER UPDATE ON rollup_hour BEGIN "
    f"{_total_upsert('OLD', '-')} {_total_upsert('NEW', '')} END",
    f"CREATE TRIGGER IF NOT EXISTS rollup_hour_total_delete AFTER DELETE ON rollup_hour BEGIN "
    f"{_total_upsert('OLD', '-')} END",
]
# V11: a late call (ending before the hourly watermark) is held by its batch's commit in `late_calls` and
# rolled up later in groups (sqlite_late); readers add the held calls to the rollups they read.
_V11 = ["CREATE TABLE IF NOT EXISTS late_calls (end_ns INTEGER NOT NULL, trace_id BLOB NOT NULL, "
        "span_id BLOB NOT NULL, PRIMARY KEY (end_ns, trace_id, span_id)) WITHOUT ROWID"]
# append only; never edit a released step
MIGRATIONS: list[list[str]] = [_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10, _V11]
LATEST = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The file's schema version (0: empty file)."""
    row = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if row is None:
        return 0
    version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    return int(version or 0)


# Every table a ledger file of any version holds (SQLite's own sqlite_* tables aside).
LEDGER_TABLES = frozenset({"schema_version", "labelsets", "prices", "calls", "rollup_hour", "rollup_day", "meta",
                           "reprices", "price_history", "rollup_field_day", "pruned_calls", "labelset_dims",
                           "field_day_rows", "provider_reports", "provider_lines", "rollup_hour_total",
                           "late_calls"}) | sqlite_units.TABLES
_REQUIRED = ("labelsets", "prices", "calls")  # from version 1 on


def check_ledger_file(conn: sqlite3.Connection, path: Path, version: int) -> None:
    """LedgerOpenError unless the file's tables are a genai-meter ledger's (or it has none yet): another
    application's database is never given ledger tables, nor read as a ledger."""
    tables = {r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")}
    foreign = sorted(tables - LEDGER_TABLES)
    if foreign:
        raise LedgerOpenError(f"{path}: not a genai-meter ledger: it holds tables that are not the ledger's "
                              f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); give the "
                              "ledger a file of its own")
    if version == 0 and tables - {"schema_version"}:
        raise LedgerOpenError(f"{path}: not a genai-meter ledger: it holds tables ({', '.join(sorted(tables))}) "
                              "but no schema version; give the ledger a file of its own")
    missing = [t for t in _REQUIRED if t not in tables]
    if version > 0 and missing:
        raise LedgerOpenError(f"{path}: not a genai-meter ledger: table {missing[0]} is missing")


def migrate_connection(conn: sqlite3.Connection, path: Path, target: int = LATEST) -> int:
    """Apply the missing migrations up to `target` in one IMMEDIATE transaction; returns the new version.
    LedgerOpenError for a file of a newer version or one that is not a ledger (nothing changed)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = schema_version(conn)
        check_ledger_file(conn, path, current)
        if current > LATEST:
            raise LedgerOpenError(f"{path}: ledger schema version {current} is newer than this genai-meter "
                                  f"knows ({LATEST}); upgrade genai-meter")
        if current == 0:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at_ns INTEGER NOT NULL)")
        for version in range(current + 1, target + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time_ns()))
        conn.execute("COMMIT")
        return max(current, target)
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`, None when there is none: a connection keeps writing and
    reading the file it opened after that file was moved away or deleted, so writers and readers
    compare this with what they opened."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _writer_of_this_version() -> None:
    """WRITER_FUNCTION: defined, so the rollup tables' triggers let this connection write."""


def open_write(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A writing connection (WAL, synchronous=FULL), the file migrated; LedgerOpenError naming `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise LedgerOpenError(f"{path}: cannot open the ledger for writing: {exc}") from None
    try:
        check_ledger_file(conn, path, schema_version(conn))  # before WAL mode: another app's file stays as it is
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LedgerOpenError(f"{path}: the ledger needs WAL mode, the file system gave {mode!r}")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")  # the partial indexes' hot pages stay in memory
        conn.create_function(WRITER_FUNCTION, 0, _writer_of_this_version, deterministic=True)
        migrate_connection(conn, path)
    except LedgerOpenError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise LedgerOpenError(f"{path}: not a usable ledger file (corrupt, read-only or locked): {exc}") from None
    return conn


def open_read(path: Path, busy_timeout_s: float = 5.0, interruptible: bool = False) -> sqlite3.Connection:
    """A read-only connection (`mode=ro`, never migrates); refuses a missing file or an unknown schema.

    `interruptible`: statements stop once the calling thread's `deadline` has passed. Only for a
    connection one thread uses: the check runs in Python under SQLite's connection lock, so a second
    thread waiting on that lock while holding the GIL would deadlock with it."""
    if not path.is_file():
        raise LedgerFileGone(f"{path}: no ledger here (start `genai-meter serve` with the ledger on first)")
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=busy_timeout_s,
                               isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise LedgerOpenError(f"{path}: not a usable ledger file: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        version = schema_version(conn)
        check_ledger_file(conn, path, version)
    except sqlite3.Error as exc:
        conn.close()
        raise LedgerOpenError(f"{path}: not a usable ledger file: {exc}") from None
    except LedgerOpenError:
        conn.close()
        raise
    if version != LATEST:
        conn.close()
        if version > LATEST:
            raise LedgerOpenError(f"{path}: ledger schema version {version} is newer than this genai-meter "
                                  f"knows ({LATEST}); upgrade genai-meter")
        raise LedgerOpenError(f"{path}: ledger schema version {version}, expected {LATEST}; start `genai-meter "
                              "serve` (or `genai-meter ledger migrate`) once to migrate it")
    if interruptible:
        conn.set_progress_handler(deadline.sqlite_progress, deadline.PROGRESS_STEPS)
    return conn
