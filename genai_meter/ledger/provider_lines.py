"""The providers' own usage and cost reports, as the ledger stores them beside the calls.

A provider's report of one kind (OpenAI usage of completions, Anthropic's cost report, ...) covers
whole UTC days. `ReportRow` is one covered (provider, day, kind) and `LineRow` one line of it (a
group of the report: model, project, API key, tier ...). Storing is replacing: `replace(batches)`
makes the lines of every (provider, day, kind) a batch covers exactly that batch's lines, for all
batches of one call or for none (SQLite: one transaction; ClickHouse: the report rows that point at
the new lines are written last, in one insert). A later batch of the same call replaces an earlier
one's lines of the same (provider, day, kind).

The ledger keeps these rows as plain values (`genai_meter.reconcile` turns them into `ProviderLine`s);
money is integer 10^-12 of the line's currency. docs/reconciliation.md describes the fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from genai_meter.config import Config
from genai_meter.ledger.clickhouse_exec import ConnectExecutor
from genai_meter.ledger.clickhouse_provider_lines import ClickHouseProviderLines, migrated_clickhouse
from genai_meter.ledger.provider_rows import Batch, LineRow, ReportRow
from genai_meter.ledger.sqlite_provider_lines import SQLiteProviderLines
from genai_meter.ledger.urls import LedgerOpenError, clickhouse_target, sqlite_path


class ProviderLinesStore(Protocol):
    def replace(self, batches: Sequence[Batch], imported_ns: int) -> None:
        """Store every batch, in order, replacing the lines of the reports it covers (all or nothing);
        raises LedgerUnavailable when the ledger cannot take them."""

    def read(self, first: date, last: date, providers: Sequence[str] = ()) -> tuple[list[ReportRow], list[LineRow]]:
        """The reports covering days first..last (inclusive) and their lines; only `providers` when given."""

    def close(self) -> None: ...


def open_provider_lines(url: str, config: Config, *, write: bool = False, migrate: bool = False) -> ProviderLinesStore:
    """The provider reports of the ledger at `url`. `write`: to store (`migrate`: creating or upgrading the
    ledger's schema first, as `genai-meter reconcile import` does; without it a ledger of another schema
    version is refused, as the report service refuses it). LedgerOpenError naming the place."""
    target = clickhouse_target(url)
    if target is not None:
        executor = ConnectExecutor(target, config.ledger.busy_timeout_seconds)
        try:
            migrated_clickhouse(executor, target.database, config, migrate=write and migrate)
        except BaseException:
            executor.close()
            raise
        return ClickHouseProviderLines(executor, target.database)
    path = sqlite_path(url)
    if path is None:
        raise LedgerOpenError(f"--ledger / ledger.url: unsupported ledger URL {url!r} (sqlite:///PATH or "
                              "clickhouse://...)")
    return SQLiteProviderLines(path, config.ledger.busy_timeout_seconds, write=write, migrate=migrate)


__all__ = ["Batch", "LineRow", "ProviderLinesStore", "ReportRow", "open_provider_lines"]
