"""Runs the ClickHouse backend's SQL on the in-process ClickHouse engine (chdb): an `Executor`."""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from chdb import session as chdb_session

from genai_meter.config import Config
from genai_meter.ledger import clickhouse_sql as sql
from genai_meter.ledger.clickhouse_exec import Value, cell_int
from genai_meter.ledger.clickhouse_reader import ClickHouseSource
from genai_meter.ledger.clickhouse_writer import ClickHouseWriter, migrate_executor, seal
from genai_meter.ledger.model import Entry, LedgerUnavailable
from genai_meter.ledger.query import Reader
from genai_meter.ledger.rows import RowBuilder
from tests.ledger.support import DAY_NS, T0

_LOCK = threading.Lock()
_SESSION: chdb_session.Session | None = None
_DBS = itertools.count()
SEALED_UNTIL = T0 + 4 * DAY_NS + 5 * 3600 * 10**9  # rollups up to here, raw rows (FINAL) after
_UNESCAPE = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "0": "\0", "'": "'", "b": "\b", "f": "\f", "N": None}


def session() -> chdb_session.Session:
    """The process's one chdb engine, in a temporary directory removed at exit."""
    global _SESSION
    if _SESSION is None:
        directory = tempfile.mkdtemp(prefix="chdb-")
        _SESSION = chdb_session.Session(directory)  # type: ignore[no-untyped-call]
        atexit.register(shutil.rmtree, directory, True)
        atexit.register(_SESSION.close)
    return _SESSION


def _escape(text: str, quote: bool) -> str:
    out = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return "'" + out.replace("'", "\\'") + "'" if quote else out


def param_text(value: object) -> str:
    """A parameter value in the text form ClickHouse parses `{name:Type}` values from."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_escape(str(v), True) for v in value) + "]"
    return _escape(str(value), False)


def _unescape(cell: str) -> str | None:
    if cell == "\\N":
        return None
    if "\\" not in cell:
        return cell
    out, i = [], 0
    while i < len(cell):
        ch = cell[i]
        if ch == "\\" and i + 1 < len(cell):
            out.append(_UNESCAPE.get(cell[i + 1], cell[i + 1]) or "")
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _convert(cell: str, kind: str) -> Value:
    text = _unescape(cell)
    if text is None:
        return None
    base = kind.removeprefix("Nullable(").removesuffix(")") if kind.startswith("Nullable(") else kind
    if base.startswith(("Int", "UInt")):
        return int(text)
    if base.startswith("Decimal"):
        return Decimal(text)
    if base.startswith("Float"):
        return float(text)
    return text


def _rows(data: bytes) -> list[Sequence[Value]]:
    """The rows of a TabSeparatedWithNamesAndTypes answer (or of one chunk of a streamed answer)."""
    lines = data.decode("utf-8").split("\n")
    if len(lines) < 2:
        return []
    kinds = lines[1].split("\t")
    return [tuple(_convert(c, k) for c, k in zip(line.split("\t"), kinds)) for line in lines[2:] if line]


class ChdbExecutor:
    """`Executor` over the process's chdb session (serialised: chdb is one engine per process)."""

    def __init__(self, fail: threading.Event | None = None) -> None:
        self.fail = fail or threading.Event()  # set: behave like a server that is down
        self.statements: list[str] = []
        self.streamed = 0

    def _run(self, text: str, params: Mapping[str, object] | None, fmt: str, streamed: bool = False) -> Any:
        """chdb's answer to `text` (its streaming result when `streamed`), recorded in `statements`."""
        if self.fail.is_set():
            raise LedgerUnavailable("ClickHouse: connection refused (test)")
        bound = {k: param_text(v) for k, v in (params or {}).items()}
        with _LOCK:
            self.statements.append(text)
            run = session().send_query if streamed else session().query
            return run(text, fmt, params=bound)

    def command(self, text: str, params: Mapping[str, object] | None = None) -> None:
        self._run(text, params, "TabSeparated")

    def query(self, text: str, params: Mapping[str, object] | None = None) -> list[Sequence[Value]]:
        return _rows(self._run(text, params, "TabSeparatedWithNamesAndTypes").bytes())

    def stream(self, text: str, params: Mapping[str, object] | None = None) -> Iterator[Sequence[Value]]:
        """The rows a chunk at a time, as chdb's streaming query sends them (`streamed` counts the chunks).
        A statement run in between ends chdb's stream: it then fails, as a dropped connection would."""
        result = self._run(text, params, "TabSeparatedWithNamesAndTypes", streamed=True)
        try:
            while True:
                with _LOCK:
                    chunk = result.fetch()
                if chunk is None:
                    return
                self.streamed += 1
                yield from _rows(chunk.bytes())
        finally:
            result.close()

    def close(self) -> None:
        pass


def new_database(config: Config) -> tuple[ChdbExecutor, str]:
    executor = ChdbExecutor()
    db = f"ledger_{next(_DBS)}"
    migrate_executor(executor, db, config)
    executor.command(f"SYSTEM STOP MERGES {db}.calls")  # keep duplicates unmerged: queries must not count them
    return executor, db


def seal_until(executor: ChdbExecutor, db: str, until_ns: int) -> None:
    while True:
        before = cell_int(executor.query(sql.sealed_until_sql(db))[0][0])
        if seal(executor, db, until_ns, 0) == before:
            return


def filled_chdb_reader(tmp: Path, config: Config, entries: list[Entry]) -> Reader:
    """Entries written through the ClickHouse writer (spool, shipper), a replayed copy of the first
    batch under another token (duplicates FINAL must hide), and hours sealed up to SEALED_UNTIL."""
    executor, db = new_database(config)
    writer = ClickHouseWriter(lambda: executor, db, config, tmp / "spool", seal_grace_s=10 * 365 * 86400)
    for i in range(0, len(entries), 700):
        writer.submit(entries[i:i + 700]).result(30)
    writer.close()
    rows = RowBuilder(config).rows(entries[:300])
    body = "\n".join(sql.json_row(r, 1) for r in rows)
    executor.command(sql.insert_sql(db, "replayed-batch", body))
    executor.command(sql.insert_sql(db, "replayed-batch", body))  # a retry: same token
    seal_until(executor, db, SEALED_UNTIL)
    return Reader(ClickHouseSource(executor, db, config))
