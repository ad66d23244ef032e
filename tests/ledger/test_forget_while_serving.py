"""`ledger forget --customer` while a writer and a report service's reader run: label-set ids are never
reused (schema v6), every deletion of a dictionary row moves the dictionary generation, and the
writer's and the reader's caches follow it, so another tenant's new calls never show under the
forgotten customer's name and the forgotten customer's later calls get a fresh label set."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from genai_meter.config import Config, LedgerConfig
from genai_meter.ledger import forget, open_reader, prune
from genai_meter.ledger.sqlite_schema import migrate_connection
from genai_meter.ledger.sqlite_writer import SQLiteWriter
from tests.ledger.support import DAY_NS, T0, entry

FAR = T0 + 1000 * DAY_NS


def _labelset_ids(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {str(customer or ""): int(i) for i, customer in conn.execute(
            "SELECT id, json_extract(dims, '$.customer') FROM labelsets")}
    finally:
        conn.close()


def _generation(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'dictionary_generation'").fetchone()[0])
    finally:
        conn.close()


def _calls(customer: str, first: int, n: int = 5) -> list:
    return [entry(first + i, T0 + first * 1000 + i, customer=customer) for i in range(n)]


def test_a_deleted_label_set_id_is_never_given_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    writer = SQLiteWriter(tmp_path / "ledger.db", Config())
    # calls without a customer first: forget then moves zeta's calls to an existing label set and deletes the
    # newest one, whose id SQLite would give to the next label set without AUTOINCREMENT
    writer.submit(_calls("", 500) + _calls("acme", 0) + _calls("zeta", 100)).result(10)
    writer.close()
    zeta = _labelset_ids(tmp_path / "ledger.db")["zeta"]
    assert zeta == max(_labelset_ids(tmp_path / "ledger.db").values())  # the newest label set
    forget(url, Config(), customer="zeta")
    writer = SQLiteWriter(tmp_path / "ledger.db", Config())
    writer.submit(_calls("omega", 200)).result(10)
    writer.close()
    assert _labelset_ids(tmp_path / "ledger.db")["omega"] > zeta


def test_forget_while_a_writer_and_a_reader_run(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    writer = SQLiteWriter(path, Config())
    reader = open_reader(url, Config())  # the report service's reader, its caches filled before forget
    try:
        assert writer.submit(_calls("", 500) + _calls("acme", 0) + _calls("zeta", 100)).result(10) == [True] * 15
        assert {r.dimensions.get("customer") for r in reader.events({}, limit=100).rows} == {None, "acme", "zeta"}
        assert _labelset_ids(path)["zeta"] == max(_labelset_ids(path).values())
        assert reader.dimension_values("customer", T0, FAR, {}) == ["acme", "zeta"]
        zeta_id = _labelset_ids(path)["zeta"]

        assert forget(url, Config(), customer="zeta") == 5  # serve still running

        assert writer.submit(_calls("omega", 200)).result(10) == [True] * 5  # another tenant's first calls
        assert writer.submit(_calls("zeta", 300)).result(10) == [True] * 5  # the forgotten customer, later
        by_span = {r.end_ns: r.dimensions.get("customer", "") for r in reader.events({}, limit=100).rows}
        assert [by_span[T0 + 200_000 + i] for i in range(5)] == ["omega"] * 5
        assert [by_span[T0 + 300_000 + i] for i in range(5)] == ["zeta"] * 5
        assert [by_span[T0 + 100_000 + i] for i in range(5)] == [""] * 5  # forgotten
        assert [by_span[T0 + i] for i in range(5)] == ["acme"] * 5
        totals = {t.key: t.calls for t in reader.totals(T0, FAR, {}, ["customer"])}
        assert totals == {("",): 10, ("acme",): 5, ("omega",): 5, ("zeta",): 5}
        assert reader.dimension_values("customer", T0, FAR, {}) == ["acme", "omega", "zeta"]
        omega = reader.events({"customer": ["omega"]}, limit=100).rows  # a scoped view of the other tenant
        assert sorted(r.end_ns for r in omega) == [T0 + 200_000 + i for i in range(5)]
        ids = _labelset_ids(path)
        assert ids["omega"] > zeta_id and ids["zeta"] > ids["omega"]  # fresh ids, never the deleted one
    finally:
        reader.close()
        writer.close()


def test_only_deletions_of_dictionary_rows_move_the_generation(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    url = f"sqlite:///{path}"
    writer = SQLiteWriter(path, Config())
    writer.submit(_calls("acme", 0) + [entry(50, T0 + 50, user="alice")]).result(10)
    writer.close()
    start = _generation(path)
    prune(url, Config(ledger=LedgerConfig(retention_days=1)), now_ns=T0 + 10 * DAY_NS)  # raw calls only
    forget(url, Config(), user="alice")  # a calls column only
    assert _generation(path) == start
    forget(url, Config(), customer="acme")
    assert _generation(path) == start + 1
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DELETE FROM prices")  # whoever deletes dictionary rows, by any statement
    assert _generation(path) == start + 2
    conn.close()


def test_migration_to_version_6_keeps_every_id(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate_connection(conn, path, target=5)
    for i in (1, 2, 7):
        conn.execute("INSERT INTO labelsets VALUES (?, 's', 'e', 'openai', 'm', 'm', 'chat', 'ok', '', ?)",
                     (i, f'{{"customer":"c{i}"}}'))
        conn.execute("INSERT INTO prices VALUES (?, 'x', 'v', ?, '{}')", (i, f"e{i}"))
    migrate_connection(conn, path)
    assert conn.execute("SELECT id, json_extract(dims, '$.customer') FROM labelsets ORDER BY id").fetchall() == \
        [(1, "c1"), (2, "c2"), (7, "c7")]
    assert [r[0] for r in conn.execute("SELECT id FROM prices ORDER BY id")] == [1, 2, 7]
    conn.execute("DELETE FROM labelsets WHERE id = 7")
    conn.execute("INSERT INTO labelsets (service, environment, provider, model, request_model, operation, status, "
                  "error_type, dims) VALUES ('s', 'e', 'openai', 'm', 'm', 'chat', 'ok', '', '{}')")
    assert conn.execute("SELECT MAX(id) FROM labelsets").fetchone()[0] == 8
    conn.close()
