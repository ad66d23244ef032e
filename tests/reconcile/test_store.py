"""Provider reports in the ledger, on both backends (a SQLite file; the ClickHouse SQL on chdb): stored
lines read back exactly, a report imported again or overlapped replaces its (provider, day, kind) lines
and never adds them twice, usage and cost reports of one day never replace each other, a covered day
without lines stays covered, and a batch that cannot be stored leaves nothing of the call behind.

Fixtures: the documented page shapes of tests/reconcile/fixtures (see test_openai.py, test_anthropic.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from genai_meter.config import Config, parse_config
from genai_meter.ledger.clickhouse_provider_lines import ClickHouseProviderLines, migrated_clickhouse
from genai_meter.ledger.model import LedgerUnavailable
from genai_meter.ledger.provider_lines import ProviderLinesStore, open_provider_lines
from genai_meter.ledger.provider_rows import Batch
from genai_meter.ledger.sqlite_schema import LATEST, schema_version
from genai_meter.ledger.urls import LedgerOpenError
from genai_meter.reconcile import read_export
from genai_meter.reconcile.store import line_of, to_batch
from tests.reconcile.scenario import (
    AFTER,
    EXACT_DAY,
    MISSING_DAY,
    TIER_DAY,
    result,
    scenario_page,
    usage_page,
    write_page,
)
from tests.reconcile.support import fixture

AUG1, AUG2 = date(2025, 8, 1), date(2025, 8, 2)


@pytest.fixture(params=["sqlite", "chdb"])
def lines_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProviderLinesStore]:
    if request.param == "sqlite":
        found: ProviderLinesStore = open_provider_lines(f"sqlite:///{tmp_path / 'ledger.db'}", Config(), write=True,
                                                        migrate=True)
    else:
        from tests.ledger.chdb_harness import ChdbExecutor  # chdb loads only where the test runs on it

        executor = ChdbExecutor()
        db = f"lines_{abs(hash(str(tmp_path))) % 10**9}"
        migrated_clickhouse(executor, db, Config(), migrate=True)
        found = ClickHouseProviderLines(executor, db)
    yield found
    found.close()


def batch_of(path: Path) -> Batch:
    return to_batch(read_export(path), {})


def test_lines_come_back_exactly(lines_store: ProviderLinesStore) -> None:
    exports = [read_export(fixture(name)) for name in ("openai_completions.json", "openai_costs.json",
                                                       "anthropic_usage.json", "openrouter_export.csv")]
    lines_store.replace([to_batch(e, {}) for e in exports], 1)
    reports, rows = lines_store.read(date(2025, 1, 1), date(2025, 12, 31))
    expected = sorted((line for e in exports for line in e.lines),
                      key=lambda x: (x.provider, x.day, x.source.kind))
    assert sorted((line_of(r) for r in rows), key=lambda x: (x.provider, x.day, x.source.kind)) == expected
    assert {(r.provider, r.day, r.kind) for r in reports} == {(c.provider, c.day, c.kind) for e in exports
                                                              for c in e.covers}
    costs = {r.kind: r.states_cost for r in reports}
    assert costs["openai.costs"] and costs["openrouter.csv"] and not costs["openai.usage.completions"]
    empty = [r for r in reports if r.provider == "openai" and r.day == AUG2 and r.kind == "openai.usage.completions"]
    assert empty and empty[0].lines == 0  # the provider reports the day, without a line


def test_the_same_file_twice_is_stored_once(lines_store: ProviderLinesStore, tmp_path: Path) -> None:
    page = write_page(tmp_path / "usage.json", scenario_page())
    lines_store.replace([batch_of(page)], 1)
    lines_store.replace([batch_of(page)], 2)
    lines_store.replace([batch_of(page), batch_of(page)], 3)  # twice in one call, too
    _, rows = lines_store.read(EXACT_DAY, TIER_DAY)
    assert [(r.day, r.requests) for r in rows] == [(EXACT_DAY, 4), (MISSING_DAY, 6), (TIER_DAY, 5)]


def test_an_overlapping_file_replaces_the_days_it_covers(lines_store: ProviderLinesStore, tmp_path: Path) -> None:
    lines_store.replace([batch_of(write_page(tmp_path / "a.json", scenario_page()))], 1)
    later = usage_page({TIER_DAY: [result(7, "default"), result(2, "flex", project="proj_b")],
                        AFTER: []})
    lines_store.replace([batch_of(write_page(tmp_path / "b.json", later))], 2)
    reports, rows = lines_store.read(EXACT_DAY, AFTER)
    assert [(r.day, r.requests, r.service_tier) for r in rows] == [
        (EXACT_DAY, 4, "default"), (MISSING_DAY, 6, "default"), (TIER_DAY, 7, "default"), (TIER_DAY, 2, "flex")]
    assert [(r.day, r.lines, r.source) for r in reports] == [
        (EXACT_DAY, 1, str(tmp_path / "a.json")), (MISSING_DAY, 1, str(tmp_path / "a.json")),
        (TIER_DAY, 2, str(tmp_path / "b.json")), (AFTER, 0, str(tmp_path / "b.json"))]


def test_a_later_empty_report_of_a_day_removes_its_lines(lines_store: ProviderLinesStore, tmp_path: Path) -> None:
    lines_store.replace([batch_of(write_page(tmp_path / "a.json", scenario_page()))], 1)
    later = usage_page({MISSING_DAY: [], TIER_DAY: [result(5, "priority")]})  # the kind is told from TIER_DAY
    lines_store.replace([batch_of(write_page(tmp_path / "b.json", later))], 2)
    reports, rows = lines_store.read(EXACT_DAY, TIER_DAY)
    assert [r.day for r in rows] == [EXACT_DAY, TIER_DAY]
    assert [(r.day, r.lines) for r in reports] == [(EXACT_DAY, 1), (MISSING_DAY, 0), (TIER_DAY, 1)]


def test_usage_and_cost_reports_of_a_day_are_kept_apart(lines_store: ProviderLinesStore) -> None:
    lines_store.replace([batch_of(fixture("openai_completions.json"))], 1)
    lines_store.replace([batch_of(fixture("openai_costs.json"))], 2)
    lines_store.replace([batch_of(fixture("openai_completions.json"))], 3)
    _, rows = lines_store.read(AUG1, AUG1)
    assert sorted(r.kind for r in rows) == ["openai.costs"] * 3 + ["openai.usage.completions"] * 2


def test_reading_by_provider_and_day(lines_store: ProviderLinesStore) -> None:
    lines_store.replace([batch_of(fixture("openai_completions.json")), batch_of(fixture("anthropic_usage.json"))], 1)
    reports, rows = lines_store.read(AUG2, AUG2, ["anthropic"])
    assert {(r.provider, r.day) for r in reports} == {("anthropic", AUG2)}
    assert [(r.provider, r.model, r.tokens[0]) for r in rows] == [("anthropic", "claude-sonnet-4-20250514", 7)]


def test_a_batch_that_cannot_be_stored_leaves_nothing(lines_store: ProviderLinesStore, tmp_path: Path) -> None:
    lines_store.replace([batch_of(write_page(tmp_path / "a.json", scenario_page()))], 1)
    good = batch_of(write_page(tmp_path / "b.json", usage_page({EXACT_DAY: [result(9, "default")]})))
    bad = batch_of(write_page(tmp_path / "c.json", usage_page({MISSING_DAY: [result(1, "default")]})))
    bad = Batch(bad.reports, [bad.lines[0]._replace(day=TIER_DAY)])  # a line outside what its batch covers
    with pytest.raises(ValueError, match="not in a report the batch covers"):
        lines_store.replace([good, bad], 2)
    _, rows = lines_store.read(EXACT_DAY, TIER_DAY)
    assert [(r.day, r.requests) for r in rows] == [(EXACT_DAY, 4), (MISSING_DAY, 6), (TIER_DAY, 5)]


def test_sqlite_rolls_back_a_failed_replacement(tmp_path: Path) -> None:
    """The database refuses the second batch's insert: the first batch of the same call is undone too."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = open_provider_lines(url, Config(), write=True, migrate=True)
    store.replace([batch_of(write_page(tmp_path / "a.json", scenario_page()))], 1)
    store.close()
    conn = sqlite3.connect(tmp_path / "ledger.db")
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON provider_lines WHEN NEW.requests = 9 "
                 "BEGIN SELECT RAISE(ABORT, 'disk full (test)'); END")
    conn.commit()
    conn.close()
    first = batch_of(write_page(tmp_path / "b.json", usage_page({EXACT_DAY: [result(1, "default")]})))
    second = batch_of(write_page(tmp_path / "c.json", usage_page({MISSING_DAY: [result(9, "default")]})))
    store = open_provider_lines(url, Config(), write=True)
    with pytest.raises(LedgerUnavailable, match="disk full"):
        store.replace([first, second], 2)
    _, rows = store.read(EXACT_DAY, TIER_DAY)
    store.close()
    assert [(r.day, r.requests) for r in rows] == [(EXACT_DAY, 4), (MISSING_DAY, 6), (TIER_DAY, 5)]


def test_a_reading_store_never_writes_and_the_service_never_migrates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing.db'}"
    with pytest.raises(LedgerOpenError, match="no ledger here"):
        open_provider_lines(url, Config(), write=True)  # the report service's scheduled pull: never creates one
    reading = open_provider_lines(f"sqlite:///{tmp_path / 'l.db'}", Config(), write=True, migrate=True)
    reading.close()
    store = open_provider_lines(f"sqlite:///{tmp_path / 'l.db'}", Config())
    with pytest.raises(Exception, match="readonly|read-only"):
        store.replace([batch_of(fixture("openai_costs.json"))], 1)
    store.close()


def test_an_older_ledger_gets_the_tables_by_migration_and_keeps_its_calls(tmp_path: Path) -> None:
    """A ledger of schema version 7 (billed units, no provider reports) with a call: the service's pull
    refuses it (it never migrates), an import migrates it to the latest version and the call and its label set stay."""
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    writer = open_provider_lines(url, Config(), write=True, migrate=True)  # the current schema, then back to 7
    writer.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("DROP TABLE provider_lines; DROP TABLE provider_reports; DELETE FROM schema_version "
                       "WHERE version >= 8; INSERT INTO labelsets (service, environment, provider, model, "
                       "request_model, operation, status, error_type, dims) VALUES ('svc', '', 'openai', 'gpt-4o', "
                       "'', 'chat', 'ok', '', '{}')")
    assert schema_version(conn) == 7
    conn.close()
    with pytest.raises(LedgerOpenError, match=f"schema version 7, expected {LATEST}"):
        open_provider_lines(url, Config(), write=True)
    migrating = open_provider_lines(url, Config(), write=True, migrate=True)
    migrating.replace([batch_of(write_page(tmp_path / "a.json", scenario_page()))], 1)
    _, rows = migrating.read(EXACT_DAY, TIER_DAY)
    migrating.close()
    assert [(r.day, r.requests) for r in rows] == [(EXACT_DAY, 4), (MISSING_DAY, 6), (TIER_DAY, 5)]
    conn = sqlite3.connect(path)
    assert schema_version(conn) == LATEST
    assert conn.execute("SELECT id, model FROM labelsets").fetchall() == [(1, "gpt-4o")]
    assert "AUTOINCREMENT" in conn.execute("SELECT sql FROM sqlite_master WHERE name = 'labelsets'").fetchone()[0]
    conn.close()


def test_a_mapped_csv_states_costs_when_its_mapping_maps_a_cost() -> None:
    config = parse_config({"reconcile": {"mappings": {"azure": {
        "provider": "azure.ai.openai", "columns": {"day": "Date", "model": "Meter", "cost": "Cost",
                                                  "currency": "Currency"}}}}})
    export = read_export(fixture("azure_costs.csv"), config.reconcile.mappings, "azure")
    assert {r.states_cost for r in to_batch(export, config.reconcile.mappings).reports} == {True}
