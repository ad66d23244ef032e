"""The read-path and roll-up prototypes of the reports benchmark answer exactly what the ledger holds.

A small ledger of the benchmark's shape (`benchmarks.reports_data`): every question answered by the
real reader, the plain SQL reference, the per-field-rollup prototype and (where installed) DuckDB and
chdb over the Parquet copy must agree to the last digit, top-k groups plus remainder adding up to the
ungrouped total; the grouped hourly seal must write the rows the per-hour pass writes; the grouped
late roll-up must leave the rollup tables as the ledger's fold of held late calls does.
"""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from benchmarks import reports_sqlite
from benchmarks.bench_late_calls import entries
from benchmarks.late_grouped import late_grouped, rollup_digest
from benchmarks.reports_columnar import answer_chdb, answer_duckdb
from benchmarks.reports_data import DAY_NS, NOW_NS, ensure_parquet, generate, seal_all, write_config
from benchmarks.reports_ledger import answer_reader
from benchmarks.reports_questions import OTHER, QUESTIONS, Question, total_of
from benchmarks.reports_sqlite import add_proto, answer_plain, answer_proto
from benchmarks.reports_topk import answer_per_day
from genai_meter.config import load_config
from genai_meter.ledger.rows import RowBuilder
from genai_meter.ledger.sqlite_late import fold, hold
from genai_meter.ledger.sqlite_params import INSERT_CALL, Dictionaries, params_of
from genai_meter.ledger.sqlite_rollups import days_sealed_until
from genai_meter.ledger.sqlite_schema import open_write
from tests.ledger.chdb_harness import session

CALLS, CUSTOMERS = 6000, 300


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("reports") / "data"
    generate(directory, CALLS, CUSTOMERS)
    add_proto(directory / "ledger.db")
    return directory


def _engines(directory: Path) -> dict[str, object]:
    engines: dict[str, object] = {
        "genai": lambda q: answer_reader(directory, q, NOW_NS),
        "proto": lambda q: answer_proto(directory / "ledger.db", q, NOW_NS),
        "proto_per_day": lambda q: answer_per_day(directory / "ledger.db", q, NOW_NS) if q.group == "day_customer"
        else answer_proto(directory / "ledger.db", q, NOW_NS),
    }
    scratch = directory / "scratch"
    scratch.mkdir(exist_ok=True)
    if importlib.util.find_spec("duckdb") or importlib.util.find_spec("chdb"):
        parquet = ensure_parquet(directory, session())[0] if importlib.util.find_spec("chdb") else None
        if parquet and importlib.util.find_spec("duckdb"):
            engines["duckdb"] = lambda q: answer_duckdb(parquet, q, NOW_NS, scratch)
        if parquet:
            engines["chdb"] = lambda q: answer_chdb(parquet, q, NOW_NS, scratch, session())
    return engines


@pytest.mark.parametrize("row_width", [0, 10**9], ids=["rollups", "raw"])  # the prototype planner's two choices
@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.name)
def test_every_engine_gives_the_reference_answer(ledger: Path, question: Question, row_width: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports_sqlite, "ROW_WIDTH", row_width)
    reference = answer_plain(ledger / "ledger.db", question, NOW_NS)
    if question.export:
        assert reference["rows"] > 0 and reference["cost"] > 0
    else:
        groups = reference["groups"]
        assert isinstance(groups, dict) and groups
        whole = answer_plain(ledger / "ledger.db", Question("total", "", question.days, customer=question.customer),
                             NOW_NS)["groups"][""]  # type: ignore[index]
        assert total_of(groups) == whole  # top k + remainder (or every group) add up to the total
        assert whole[0] > 0 and whole[3] > 0
        if question.top and question.group == "customer":
            assert OTHER in groups and len(groups) == question.top + 1
    for name, answer in _engines(ledger).items():
        got = answer(question)  # type: ignore[operator]
        if question.export:
            assert {k: got[k] for k in ("rows", "calls", "cost")} == \
                {k: reference[k] for k in ("rows", "calls", "cost")}, name
        else:
            assert got["groups"] == reference["groups"], name


def test_grouped_seal_writes_the_rows_of_the_per_hour_pass(tmp_path: Path) -> None:
    generate(tmp_path / "grouped", 3000, 50)
    generate(tmp_path / "per_hour", 3000, 50, grouped=False)
    conn = sqlite3.connect(tmp_path / "grouped" / "ledger.db")
    conn.execute(f"ATTACH '{tmp_path / 'per_hour' / 'ledger.db'}' AS other")
    for table in ("rollup_hour", "rollup_day", "rollup_field_day", "meta", "calls"):
        count = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        assert count > 0
        for a, b in (("main", "other"), ("other", "main")):
            diff = conn.execute(f"SELECT COUNT(*) FROM (SELECT * FROM {a}.{table} EXCEPT SELECT * FROM {b}.{table})")
            assert diff.fetchone()[0] == 0, table
    conn.close()


@pytest.mark.parametrize("size", [1, 40, 400])
def test_grouped_late_rollup_equals_the_fold(ledger: Path, tmp_path: Path, size: int) -> None:
    shutil.copy(ledger / "ledger.db", tmp_path / "ledger.db")
    config = load_config(write_config(tmp_path))
    now = time.time_ns()
    conn = open_write(tmp_path / "ledger.db", 30.0)
    seal_all(conn, now - 120 * 10**9)
    dicts = Dictionaries(tmp_path / "ledger.db", 30.0)
    builder = RowBuilder(config)
    late = entries(size, 500, now - 30 * DAY_NS, now - now % DAY_NS, seed=size)  # days sealed (before today)
    params = sorted(params_of([builder.row(e) for e in late], dicts))
    days = sorted({p[0] - p[0] % DAY_NS for p in params if p[0] < days_sealed_until(conn)})
    assert days
    digests = []
    for grouped in (False, True):
        conn.execute("BEGIN IMMEDIATE")
        before = rollup_digest(conn, days)
        conn.executemany(INSERT_CALL, params)
        if grouped:
            assert late_grouped(conn, params) == size
        else:
            hold(conn, [(p[0], p[1], p[2]) for p in params])
            fold(conn)
        digests.append(rollup_digest(conn, days))
        assert digests[-1] != before
        conn.execute("ROLLBACK")
    assert digests[0] == digests[1]
    dicts.close()
    conn.close()
