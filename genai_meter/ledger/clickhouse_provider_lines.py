"""The providers' reports in the ClickHouse ledger: `provider_reports` and `provider_lines` (schema v3).

ClickHouse has no transactions, so a replacement is made visible by one small insert. Every batch gets
an `import_id` (increasing within a call, and over time); its lines are inserted first, tagged with
it, where nothing reads them yet; then one insert of all the report rows points each (provider, day,
kind) at its batch's `import_id` (`ReplacingMergeTree(import_id)`: the newest wins; reads use FINAL).
A failure before that last insert leaves only lines no report points at: nothing visible changes.
Lines of replaced imports stay in the table, unread (a few rows per provider, day and model).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from genai_meter.config import Config
from genai_meter.ledger import clickhouse_sql as sql
from genai_meter.ledger.clickhouse_exec import Executor, Value, cell_int
from genai_meter.ledger.clickhouse_writer import migrate_executor
from genai_meter.ledger.provider_rows import Batch, LineRow, ReportRow, check_batches
from genai_meter.ledger.urls import LedgerOpenError
from genai_meter.money import from_pico, to_pico

PROVIDER_LINES_VERSION = 3  # the schema version that has the tables
_LINE_SELECT = ("provider, day, kind, seq, model, model_key, project, api_key_id, service_tier, batch, served_by, "
                "line_item, requests, t_input, t_cache_read, t_cache_write, t_output, t_reasoning, cache_write_1h, "
                "folded, units, toString(cost), currency, source")  # the cost as text: exact


def migrated_clickhouse(executor: Executor, db: str, config: Config, *, migrate: bool) -> None:
    """Migrate the database (`migrate`), else LedgerOpenError unless it holds the provider tables."""
    if migrate:
        migrate_executor(executor, db, config)
        return
    rows = executor.query("SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'schema_version'",
                          {"db": db})
    version = cell_int(executor.query(sql.schema_version_sql(db))[0][0]) if cell_int(rows[0][0]) else 0
    if version < PROVIDER_LINES_VERSION:
        raise LedgerOpenError(f"ClickHouse database {db}: ledger schema version {version} has no provider reports; "
                              "run `genai-meter ledger migrate` once")


def line_json(line: LineRow, import_id: int) -> str:
    """One JSONEachRow line of `provider_lines`."""
    doc: dict[str, object] = {
        "provider": line.provider, "day": line.day.isoformat(), "kind": line.kind, "import_id": import_id,
        "seq": line.seq, "model": line.model, "model_key": line.model_key, "project": line.project,
        "api_key_id": line.api_key_id, "service_tier": line.service_tier,
        "batch": None if line.batch is None else int(line.batch), "served_by": line.served_by,
        "line_item": line.line_item, "requests": line.requests, "t_input": line.tokens[0],
        "t_cache_read": line.tokens[1], "t_cache_write": line.tokens[2], "t_output": line.tokens[3],
        "t_reasoning": line.tokens[4], "cache_write_1h": line.cache_write_1h, "folded": ",".join(line.folded),
        "units": json.dumps(dict(line.units), sort_keys=True),
        "cost": None if line.cost_pico is None else f"{from_pico(line.cost_pico):f}", "currency": line.currency,
        "source": line.source}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def report_json(report: ReportRow, import_id: int, imported_ns: int) -> str:
    """One JSONEachRow line of `provider_reports`."""
    return json.dumps({"provider": report.provider, "day": report.day.isoformat(), "kind": report.kind,
                       "import_id": import_id, "states_cost": int(report.states_cost), "lines": report.lines,
                       "source": report.source, "imported_ns": imported_ns}, separators=(",", ":"), ensure_ascii=False)


def _current(db: str) -> str:
    """The report rows in force (FINAL: the newest import of each provider, day and kind)."""
    return (f"SELECT provider, day, kind, import_id, states_cost, lines, source FROM {db}.provider_reports "
            "FINAL WHERE day >= {first:Date} AND day <= {last:Date} "
            "AND (length({providers:Array(String)}) = 0 OR has({providers:Array(String)}, provider))")


def reports_sql(db: str) -> str:
    return f"SELECT provider, day, kind, states_cost, lines, source FROM ({_current(db)}) ORDER BY provider, day, kind"


def lines_sql(db: str) -> str:
    """The lines of the report rows in force."""
    return (f"SELECT {_LINE_SELECT} FROM {db}.provider_lines WHERE (provider, day, kind, import_id) IN "
            f"(SELECT provider, day, kind, import_id FROM ({_current(db)})) ORDER BY provider, day, kind, seq")


def _text(value: Value) -> str:
    return "" if value is None else str(value)


def _line(r: Sequence[Value]) -> LineRow:
    units = json.loads(_text(r[20]) or "{}")
    return LineRow(
        provider=_text(r[0]), day=date.fromisoformat(_text(r[1])), kind=_text(r[2]), seq=cell_int(r[3]),
        model=_text(r[4]), model_key=_text(r[5]), project=_text(r[6]), api_key_id=_text(r[7]),
        service_tier=_text(r[8]), batch=None if r[9] is None else bool(cell_int(r[9])), served_by=_text(r[10]),
        line_item=_text(r[11]), requests=None if r[12] is None else cell_int(r[12]),
        tokens=(cell_int(r[13]), cell_int(r[14]), cell_int(r[15]), cell_int(r[16]), cell_int(r[17])),
        cache_write_1h=cell_int(r[18]), folded=tuple(f for f in _text(r[19]).split(",") if f),
        units=tuple(sorted((str(k), int(v)) for k, v in units.items())),
        cost_pico=None if r[21] is None else to_pico(Decimal(_text(r[21]))), currency=_text(r[22]),
        source=_text(r[23]))


class ClickHouseProviderLines:
    """The provider reports of one ClickHouse ledger database. Not thread-safe (one executor)."""

    def __init__(self, executor: Executor, db: str) -> None:
        self.executor = executor
        self.db = db

    def replace(self, batches: Sequence[Batch], imported_ns: int) -> None:
        check_batches(batches)
        reports: list[str] = []
        for number, batch in enumerate(batches):
            import_id = imported_ns + number  # later batches of one call win
            if batch.lines:
                body = "\n".join(line_json(line, import_id) for line in batch.lines)
                self.executor.command(f"INSERT INTO {self.db}.provider_lines FORMAT JSONEachRow\n{body}")
            reports += [report_json(r, import_id, imported_ns) for r in batch.reports]
        if reports:  # one insert, one block: every report of the call switches at once
            self.executor.command(f"INSERT INTO {self.db}.provider_reports FORMAT JSONEachRow\n" + "\n".join(reports))

    def read(self, first: date, last: date, providers: Sequence[str] = ()) -> tuple[list[ReportRow], list[LineRow]]:
        params = {"first": first.isoformat(), "last": last.isoformat(), "providers": sorted(set(providers))}
        reports = [ReportRow(_text(r[0]), date.fromisoformat(_text(r[1])), _text(r[2]), bool(cell_int(r[3])),
                             cell_int(r[4]), _text(r[5]))
                   for r in self.executor.query(reports_sql(self.db), params)]
        lines = [_line(r) for r in self.executor.query(lines_sql(self.db), params)]
        return reports, lines

    def close(self) -> None:
        self.executor.close()
