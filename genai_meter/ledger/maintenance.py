"""Ledger maintenance: re-pricing, pruning, backup and forgetting (SQLite; see docs/ledger.md).

Re-pricing recomputes costs from the stored token counts with the current price book; applying it
moves each changed call's old costs to `price_history` (one `reprices` run id), points the call at
its new price entry and corrects the rollups by the exact differences (for the calls already rolled
up: those before the hourly watermark; a seal pass rolls the others up with their new costs later),
in bounded transactions.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger import sqlite_prune, sqlite_units
from genai_meter.ledger.clickhouse_exec import ConnectExecutor, Executor
from genai_meter.ledger.clickhouse_reprice import reprice_clickhouse
from genai_meter.ledger.clickhouse_upkeep import forget_customer_executor, forget_user_executor
from genai_meter.ledger.clickhouse_writer import prune_sealed
from genai_meter.ledger.repricing import Repricer, RepriceResult
from genai_meter.ledger.rows import (
    COST_CLASSES,
    LABEL_FIELDS,
    SUM_NAMES,
    TOKEN_CLASSES,
    Price,
    hash_value,
)
from genai_meter.ledger.sqlite_late import fold
from genai_meter.ledger.sqlite_params import labelset_id, price_id
from genai_meter.ledger.sqlite_rollups import (
    HOUR_NS,
    add_rollups,
    days_sealed_until,
    hours_sealed_until,
    rollup_params,
    upsert_rollup_sql,
)
from genai_meter.ledger.sqlite_schema import MASK32, open_write, rollup_columns
from genai_meter.ledger.urls import ClickHouseTarget, clickhouse_target, sqlite_path
from genai_meter.pricing import PriceBook

CHUNK = 2000
_COST_COLS = ", ".join(f"c_{c}" for c in COST_CLASSES)
_I_UNPRICED = SUM_NAMES.index("unpriced")
_I_COST = SUM_NAMES.index("c_input")
_I_LIST = SUM_NAMES.index("list_cost")


def _path(url: str, what: str) -> Path:
    if clickhouse_target(url) is not None:
        raise ValueError(f"{what} runs on the SQLite ledger; on ClickHouse use BACKUP (docs/ledger.md)")
    path = sqlite_path(url)
    if path is None:
        raise ValueError(f"--ledger: unsupported ledger URL {url!r}")
    return path


@contextmanager
def _clickhouse(target: ClickHouseTarget, config: Config) -> Iterator[Executor]:
    executor = ConnectExecutor(target, config.ledger.busy_timeout_seconds)
    try:
        yield executor
    finally:
        executor.close()


def _labelsets(conn: sqlite3.Connection) -> dict[int, tuple[tuple[str, ...], dict[str, str]]]:
    rows = conn.execute(f"SELECT id, {', '.join(LABEL_FIELDS)}, dims FROM labelsets").fetchall()
    return {r[0]: (tuple(r[1:-1]), json.loads(r[-1])) for r in rows}


def reprice(url: str, config: Config, start_ns: int, end_ns: int, provider: str | None = None,
            model: str | None = None, dry_run: bool = True, book: PriceBook | None = None) -> RepriceResult:
    """Recompute costs of the calls in [start, end) (optionally one provider / model) with `book`
    (default: the config's price book). Dry run: totals only; else store them, keeping the history."""
    book = book or PriceBook.from_config(config)
    target = clickhouse_target(url)
    if target is not None:
        return reprice_clickhouse(target, config, start_ns, end_ns, provider, model, dry_run, book)
    path = _path(url, "reprice")
    repricer = Repricer(book)
    result = repricer.result
    conn = open_write(path, config.ledger.busy_timeout_seconds)
    try:
        sets = _labelsets(conn)
        prices = {r[0]: Price(*r[1:])
                  for r in conn.execute("SELECT id, source, version, entry, unit_prices FROM prices")}
        ids = [i for i, (labels, _) in sets.items()
               if (provider is None or labels[2] == provider) and (model is None or labels[3] == model)]
        if not dry_run:
            conn.execute("BEGIN IMMEDIATE")
            result.reprice_id = conn.execute(
                "INSERT INTO reprices (at_ns, start_ns, end_ns, provider, model, price_version, calls, old_total, "
                "new_total) VALUES (?, ?, ?, ?, ?, ?, 0, '', '')",
                (time.time_ns(), start_ns, end_ns, provider or "", model or "", book.catalog_version)).lastrowid
            conn.execute("COMMIT")
        position = (start_ns - 1, b"\xff" * 16, b"\xff" * 8)
        while True:
            conn.execute("BEGIN" if dry_run else "BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    f"SELECT end_ns, trace_id, span_id, labelset, {', '.join('t_' + c for c in TOKEN_CLASSES)}, "
                    f"{_COST_COLS}, list_cost, price, unpriced, cache_write_1h FROM calls "
                    "WHERE (end_ns, trace_id, span_id) > (?, ?, ?) AND end_ns < ? AND invalid = '' "
                    "AND labelset IN (SELECT value FROM json_each(?)) ORDER BY end_ns, trace_id, span_id LIMIT ?",
                    (*position, end_ns, json.dumps(ids), CHUNK)).fetchall()
                deltas: dict[tuple[int, int], list[int]] = {}
                unit_deltas: dict[tuple[int, int, int], list[int]] = {}
                pending_prices: dict[Price, int] = {}
                if not dry_run:  # held late calls into the rollups first: every call before W is corrected there
                    fold(conn)
                sealed = hours_sealed_until(conn)  # calls before this are in the rollups: correct them
                units = sqlite_units.units_of(conn, [(r[0], r[1], r[2]) for r in rows]) \
                    if rows and sqlite_units.has_units(conn) else {}
                for r in rows:
                    labels, dims = sets[r[3]]
                    old = tuple(r[9:15])
                    old_units = units.get((r[0], r[1], r[2]), [])
                    new = repricer.reprice(labels, tuple(r[4:9]), r[0], bool(r[18]), old, prices.get(r[16]), dims,
                                           old_units)
                    if new is None or dry_run:
                        continue
                    if old_units or new.units:
                        sqlite_units.replace_units(conn, (r[0], r[1], r[2]), r[3], old_units, new.units,
                                                   int(result.reprice_id or 0), unit_deltas if r[0] < sealed else None)
                    conn.execute(f"INSERT INTO price_history (trace_id, span_id, reprice, end_ns, price, unpriced, "
                                 f"{_COST_COLS}, list_cost) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 (r[1], r[2], result.reprice_id, r[0], r[16], r[17], *old, r[15]))
                    if new.price not in pending_prices:
                        pending_prices[new.price] = price_id(conn, new.price)
                    new_price = pending_prices[new.price]
                    conn.execute(f"UPDATE calls SET {', '.join(f'c_{c} = ?' for c in COST_CLASSES)}, list_cost = ?, "
                                 "price = ?, unpriced = ? WHERE end_ns = ? AND trace_id = ? AND span_id = ?",
                                 (*new.costs, new.list_cost, new_price, new.unpriced, r[0], r[1], r[2]))
                    if r[0] >= sealed:
                        continue
                    delta = deltas.setdefault((r[0] - r[0] % HOUR_NS, r[3]), [0] * len(SUM_NAMES))
                    delta[_I_UNPRICED] += new.unpriced - r[17]
                    for i in range(6):
                        delta[_I_COST + i] += new.costs[i] - old[i]
                    delta[_I_LIST] += new.list_cost - r[15]
                if deltas:
                    add_rollups(conn, deltas)
                if unit_deltas:
                    sqlite_units.add_unit_rollups(conn, unit_deltas, days_sealed_until(conn))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if len(rows) < CHUNK:
                break
            position = (rows[-1][0], rows[-1][1], rows[-1][2])
        if result.reprice_id is not None:
            conn.execute("UPDATE reprices SET calls = ?, old_total = ?, new_total = ? WHERE id = ?",
                         (result.changed, str(result.old_total_pico), str(result.new_total_pico), result.reprice_id))
    finally:
        conn.close()
    return result


def prune(url: str, config: Config, now_ns: int | None = None) -> int:
    """Delete raw calls past `ledger.retention_days` (and the oldest above `ledger.max_bytes`) and
    rollups past `rollup_retention_days`, in bounded batches; returns the raw calls deleted."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    target = clickhouse_target(url)
    if target is not None:
        with _clickhouse(target, config) as executor:
            return prune_sealed(executor, target.database, config, now_ns)
    path = _path(url, "prune")
    conn = open_write(path, config.ledger.busy_timeout_seconds)
    try:
        return sqlite_prune.prune_connection(conn, path, config.ledger, now_ns)
    finally:
        conn.close()


def backup(url: str, config: Config, target: Path) -> Path:
    """A consistent copy of the ledger at `target` (VACUUM INTO; the file must not exist yet)."""
    path = _path(url, "backup")
    if target.exists():
        raise ValueError(f"backup: {target} exists already; choose a new file")
    conn = open_write(path, config.ledger.busy_timeout_seconds)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()
    return target


def forget(url: str, config: Config, *, user: str | None = None, customer: str | None = None) -> int:
    """Erase an end user's id (their calls stay, anonymous) or a customer's dimension value (its calls
    and rollups move to the label set without it, its label sets are deleted). Returns the calls changed.
    Safe while `serve` writes the file and reports read it: deleting label sets moves the dictionary
    generation (schema v6 triggers, same transaction), which their caches check; ids are never reused."""
    if not user and not customer:
        raise ValueError("forget: give --user or --customer")
    dim = config.active_dimensions.get("customer")
    target = clickhouse_target(url)
    if target is not None:
        with _clickhouse(target, config) as executor:
            changed = forget_user_executor(executor, target.database, sorted({user, hash_value(user)})) if user else 0
            if customer:
                value = hash_value(customer) if dim is not None and dim.hash else customer
                changed += forget_customer_executor(executor, target.database, value)
            return changed
    path = _path(url, "forget")
    conn = open_write(path, config.ledger.busy_timeout_seconds)
    changed = 0
    try:
        conn.execute("BEGIN IMMEDIATE")
        if user:
            for value in {user, hash_value(user)}:
                changed += conn.execute("UPDATE calls SET user = '' WHERE user = ? AND user <> ''", (value,)).rowcount
        if customer:
            value = hash_value(customer) if dim is not None and dim.hash else customer
            changed += _forget_customer(conn, value)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return changed


def _forget_customer(conn: sqlite3.Connection, value: str) -> int:
    changed = 0
    cols = rollup_columns()
    for labelset, (labels, dims) in _labelsets(conn).items():
        if dims.get("customer") != value:
            continue
        rest = tuple(sorted((k, v) for k, v in dims.items() if k != "customer"))
        target = labelset_id(conn, labels, rest)
        changed += conn.execute("UPDATE calls SET labelset = ? WHERE labelset = ?", (target, labelset)).rowcount
        for table in ("rollup_hour", "rollup_day"):
            rows = conn.execute(f"SELECT bucket, {', '.join(cols)} FROM {table} WHERE labelset = ?",
                                (labelset,)).fetchall()
            params = []
            for r in rows:
                values, i = [], 1
                for name in SUM_NAMES:
                    if f"{name}_hi" in cols:
                        values.append((r[i] << 32) + r[i + 1])
                        i += 2
                    else:
                        values.append(r[i])
                        i += 1
                params.append(rollup_params(r[0], target, values))
            conn.executemany(upsert_rollup_sql(table), params)
            conn.execute(f"DELETE FROM {table} WHERE labelset = ?", (labelset,))
        sqlite_units.move_labelset(conn, labelset, target)
        conn.execute("DELETE FROM labelsets WHERE id = ?", (labelset,))
    # the per-field daily rollup keeps the customer's value itself: drop it with the customer
    conn.execute("DELETE FROM rollup_field_day WHERE field = 'customer' AND value = ?", (value,))
    return changed


__all__ = ["MASK32", "RepriceResult", "backup", "forget", "prune", "reprice"]
