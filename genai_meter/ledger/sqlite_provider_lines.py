"""The providers' reports in the SQLite ledger: tables `provider_reports` and `provider_lines` (schema v7).

`replace` runs in one IMMEDIATE transaction: for each batch in order, the rows of every (provider,
day, kind) it covers are deleted and its own inserted; any error rolls everything back. A reading
store opens the file read-only (`mode=ro`); a writing one opens it read-write and migrates it only
when asked (`genai-meter reconcile import`), so the report service never changes a ledger's schema.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from genai_meter.ledger.model import LedgerUnavailable
from genai_meter.ledger.provider_rows import Batch, LineRow, ReportRow, check_batches
from genai_meter.ledger.sqlite_schema import LATEST, open_read, open_write, schema_version
from genai_meter.ledger.urls import LedgerOpenError

LINE_COLUMNS = ("provider, day, kind, seq, model, model_key, project, api_key_id, service_tier, batch, served_by, "
                "line_item, requests, t_input, t_cache_read, t_cache_write, t_output, t_reasoning, cache_write_1h, "
                "folded, units, cost_pico, currency, source")
REPORT_COLUMNS = "provider, day, kind, states_cost, lines, source"


def _open_read_write(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """A read-write connection that never migrates; LedgerOpenError unless the file is at this schema version."""
    if not path.is_file():
        raise LedgerOpenError(f"{path}: no ledger here (start `genai-meter serve` with the ledger on first)")
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=busy_timeout_s,
                               isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        version = schema_version(conn)
    except sqlite3.Error as exc:
        raise LedgerOpenError(f"{path}: not a usable ledger file: {exc}") from None
    if version != LATEST:
        conn.close()
        raise LedgerOpenError(f"{path}: ledger schema version {version}, expected {LATEST}; run `genai-meter ledger "
                              "migrate` (or start `genai-meter serve`) once to migrate it")
    return conn


def _line_params(line: LineRow) -> tuple[object, ...]:
    return (line.provider, line.day.isoformat(), line.kind, line.seq, line.model, line.model_key, line.project,
            line.api_key_id, line.service_tier, None if line.batch is None else int(line.batch), line.served_by,
            line.line_item, line.requests, *line.tokens, line.cache_write_1h, ",".join(line.folded),
            json.dumps(dict(line.units), sort_keys=True), line.cost_pico, line.currency, line.source)


def _line(row: Sequence[object]) -> LineRow:
    units = json.loads(str(row[20]))
    return LineRow(
        provider=str(row[0]), day=date.fromisoformat(str(row[1])), kind=str(row[2]), seq=int(str(row[3])),
        model=str(row[4]), model_key=str(row[5]), project=str(row[6]), api_key_id=str(row[7]),
        service_tier=str(row[8]), batch=None if row[9] is None else bool(row[9]), served_by=str(row[10]),
        line_item=str(row[11]), requests=None if row[12] is None else int(str(row[12])),
        tokens=(int(str(row[13])), int(str(row[14])), int(str(row[15])), int(str(row[16])), int(str(row[17]))),
        cache_write_1h=int(str(row[18])), folded=tuple(f for f in str(row[19]).split(",") if f),
        units=tuple(sorted((str(k), int(v)) for k, v in units.items())),
        cost_pico=None if row[21] is None else int(str(row[21])), currency=str(row[22]), source=str(row[23]))


class SQLiteProviderLines:
    """The provider reports of one ledger file. One per thread."""

    def __init__(self, path: Path, busy_timeout_s: float, *, write: bool = False, migrate: bool = False) -> None:
        self.path = path
        if write and migrate:
            self._conn = open_write(path, busy_timeout_s)
        elif write:
            self._conn = _open_read_write(path, busy_timeout_s)
        else:
            self._conn = open_read(path, busy_timeout_s)

    def replace(self, batches: Sequence[Batch], imported_ns: int) -> None:
        check_batches(batches)
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"{self.path}: the ledger cannot store provider reports now: {exc}") from None
        try:
            for batch in batches:
                keys = [(r.provider, r.day.isoformat(), r.kind) for r in batch.reports]
                conn.executemany("DELETE FROM provider_lines WHERE provider = ? AND day = ? AND kind = ?", keys)
                conn.executemany("DELETE FROM provider_reports WHERE provider = ? AND day = ? AND kind = ?", keys)
                conn.executemany(f"INSERT INTO provider_reports ({REPORT_COLUMNS}, imported_ns) VALUES "
                                 "(?, ?, ?, ?, ?, ?, ?)",
                                 [(r.provider, r.day.isoformat(), r.kind, int(r.states_cost), r.lines, r.source,
                                   imported_ns) for r in batch.reports])
                conn.executemany(f"INSERT INTO provider_lines ({LINE_COLUMNS}) VALUES "
                                 f"({', '.join('?' * 24)})", [_line_params(line) for line in batch.lines])
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise LedgerUnavailable(f"{self.path}: the ledger cannot store provider reports now: {exc}") from None
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def read(self, first: date, last: date, providers: Sequence[str] = ()) -> tuple[list[ReportRow], list[LineRow]]:
        where = "day >= ? AND day <= ? AND (? = '[]' OR provider IN (SELECT value FROM json_each(?)))"
        chosen = json.dumps(sorted(set(providers)))
        params = (first.isoformat(), last.isoformat(), chosen, chosen)
        try:
            reports = [ReportRow(str(r[0]), date.fromisoformat(str(r[1])), str(r[2]), bool(r[3]), int(r[4]), str(r[5]))
                       for r in self._conn.execute(f"SELECT {REPORT_COLUMNS} FROM provider_reports WHERE {where} "
                                                   "ORDER BY provider, day, kind", params)]
            lines = [_line(r) for r in self._conn.execute(f"SELECT {LINE_COLUMNS} FROM provider_lines WHERE {where} "
                                                          "ORDER BY provider, day, kind, seq", params)]
        except sqlite3.Error as exc:
            raise LedgerUnavailable(f"{self.path}: the ledger cannot be read now: {exc}") from None
        return reports, lines

    def close(self) -> None:
        self._conn.close()
