"""Who runs the ClickHouse SQL: `Executor` (a protocol) and its production implementation over
`clickhouse-connect` (HTTP). The tests run the same SQL through chdb (tests/ledger/chdb_harness.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Protocol

from genai_meter.ledger import deadline
from genai_meter.ledger.model import LedgerUnavailable
from genai_meter.ledger.urls import ClickHouseTarget, LedgerOpenError

Value = int | str | float | Decimal | None  # one result cell


def cell_int(value: Value) -> int:
    """An integer cell (None, as for an empty aggregate, is 0)."""
    if value is None:
        return 0
    if isinstance(value, (int, str)):
        return int(value)
    return int(value)


class Executor(Protocol):
    """Runs SQL text from `clickhouse_sql`; raises LedgerUnavailable when the server cannot answer."""

    def command(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        """DDL, an INSERT (data inline after FORMAT) or a mutation, `{name:Type}` parameters bound."""

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> list[Sequence[Value]]:
        """Rows of a SELECT with `{name:Type}` parameters bound server-side."""

    def stream(self, sql: str, params: Mapping[str, object] | None = None) -> Iterator[Sequence[Value]]:
        """`query`'s rows as the server sends them, a block at a time (never the whole answer in memory);
        the caller reads them to the end, or closes the iterator, before its next statement."""

    def close(self) -> None: ...


class ConnectExecutor:
    """`Executor` over a clickhouse-connect HTTP client (one per thread: clients are not shared)."""

    def __init__(self, target: ClickHouseTarget, timeout_s: float) -> None:
        try:
            import clickhouse_connect  # the clickhouse extra; imported here so SQLite users never load it
        except ModuleNotFoundError:
            raise LedgerOpenError("clickhouse:// ledgers need the clickhouse extra: "
                                  "pip install 'genai-meter[clickhouse]'") from None

        try:
            self._client = clickhouse_connect.get_client(
                host=target.host, port=target.port, username=target.username, password=target.password,
                secure=target.secure, connect_timeout=timeout_s, send_receive_timeout=max(timeout_s, 30.0),
                autogenerate_session_id=False)
        except Exception as exc:  # connection refused, bad credentials, TLS: name the place
            raise LedgerOpenError(f"clickhouse://{target.host}:{target.port}: cannot connect: {exc}") from None

    def command(self, sql: str, params: Mapping[str, object] | None = None) -> None:
        try:
            self._client.command(sql, parameters=dict(params) if params else None)
        except Exception as exc:
            raise LedgerUnavailable(f"ClickHouse: {exc}") from None

    def query(self, sql: str, params: Mapping[str, object] | None = None) -> list[Sequence[Value]]:
        try:
            return list(self._client.query(sql, parameters=dict(params or {}),
                                           settings=deadline.clickhouse_settings()).result_rows)
        except Exception as exc:
            raise LedgerUnavailable(f"ClickHouse: {exc}") from None

    def stream(self, sql: str, params: Mapping[str, object] | None = None) -> Iterator[Sequence[Value]]:
        try:
            with self._client.query_rows_stream(sql, parameters=dict(params or {}),
                                                settings=deadline.clickhouse_settings()) as rows:
                yield from rows
        except Exception as exc:
            raise LedgerUnavailable(f"ClickHouse: {exc}") from None

    def close(self) -> None:
        self._client.close()
