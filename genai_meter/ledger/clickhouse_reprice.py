"""Re-pricing on ClickHouse: the re-priced row is inserted again with a newer `version` (the
ReplacingMergeTree keeps it, FINAL reads it), the replaced costs go to `price_history`, and sealed
hours get correction rows in `rollup_hour` (SummingMergeTree adds them; the daily view follows)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from decimal import Decimal

from genai_meter.config import Config
from genai_meter.ledger import clickhouse_sql as sql
from genai_meter.ledger.clickhouse_exec import ConnectExecutor, Executor, Value, cell_int
from genai_meter.ledger.clickhouse_reader import unit_cells
from genai_meter.ledger.repricing import NewPrice, Repricer, RepriceResult
from genai_meter.ledger.rows import COST_CLASSES, LABEL_FIELDS, Price, Row
from genai_meter.ledger.units import UnitAmount
from genai_meter.ledger.urls import ClickHouseTarget
from genai_meter.money import from_pico, to_pico
from genai_meter.pricing import PriceBook

PAGE = 5000


def _usd(pico: int) -> str:
    return f"{from_pico(pico):f}"


def _pico(value: Value) -> int:
    """A Decimal USD cell as 10^-12 USD."""
    return to_pico(Decimal(str(0 if value is None else value)))


def _lines(r: Sequence[Value], new: NewPrice, old: tuple[int, ...], run: int,
           sealed_until: int, old_units: Sequence[UnitAmount] = ()) -> tuple[str, str, str | None, list[str]]:
    """(the re-priced calls row, its price_history row, its rollup correction or None, its unit rollup
    corrections)."""
    end_ns = cell_int(r[0])
    labels = tuple(str(v) for v in r[4:12])
    dims = tuple(sorted(json.loads(str(r[12])).items()))
    row = Row(end_ns, bytes.fromhex(str(r[1])), bytes.fromhex(str(r[2])), bytes.fromhex(str(r[3])), labels, dims,
              str(r[13]), str(r[14]), cell_int(r[15]), None if r[16] is None else cell_int(r[16]),
              tuple(cell_int(v) for v in r[17:22]), new.costs, new.list_cost, new.price,  # type: ignore[arg-type]
              new.unpriced, str(r[29]), str(r[30]), cell_int(r[31]), cell_int(r[37]), new.units)
    history = json.dumps({"reprice": run, "end_ns": end_ns, "trace_id": r[1], "span_id": r[2],
                          "price_source": r[32], "price_version": r[33], "price_entry": r[34],
                          "unpriced": cell_int(r[28]), **{f"c_{c}": _usd(v) for c, v in zip(COST_CLASSES, old)},
                          "list_cost": _usd(_pico(r[36])), "unit_names": [n for n, _, _ in old_units],
                          "unit_costs": [_usd(c) for _, _, c in old_units]})
    correction = None
    unit_fixes: list[str] = []
    if end_ns < sealed_until:
        bucket = end_ns - end_ns % sql.HOUR_NS
        delta: dict[str, object] = {"bucket": bucket, "tenant": r[38], **dict(zip(LABEL_FIELDS, labels)),
                                    "dims_key": r[12], "unpriced": new.unpriced - cell_int(r[28]),
                                    **{f"c_{c}": _usd(n - o) for c, n, o in zip(COST_CLASSES, new.costs, old)},
                                    "list_cost": _usd(new.list_cost - _pico(r[36]))}
        correction = json.dumps(delta)
        changes: dict[str, list[int]] = {}
        for sign, units in ((-1, old_units), (1, new.units)):
            for name, quantity, cost in units:
                acc = changes.setdefault(name, [0, 0])
                acc[0] += sign * quantity
                acc[1] += sign * cost
        unit_fixes = [json.dumps({"bucket": bucket, "tenant": r[38], **dict(zip(LABEL_FIELDS, labels)),
                                  "dims_key": r[12], "unit": name, "quantity": q, "cost": _usd(c)})
                      for name, (q, c) in changes.items() if q or c]
    return sql.json_row(row, run), history, correction, unit_fixes


def reprice_executor(executor: Executor, db: str, start_ns: int, end_ns: int, provider: str | None,
                     model: str | None, dry_run: bool, book: PriceBook) -> RepriceResult:
    """Re-price [start, end) of the ledger database `db`; see the module docstring."""
    repricer = Repricer(book)
    run = time.time_ns()  # the new rows' version: newer than any stored row
    after = (start_ns - 1, "", "")
    page_no = 0
    while True:
        text, params = sql.reprice_rows_sql(db, start_ns, end_ns, after, provider, model, PAGE)
        rows = executor.query(text, params)
        calls, history, corrections, unit_fixes = [], [], [], []
        sealed = cell_int(executor.query(sql.sealed_until_sql(db))[0][0])
        for r in rows:
            old = tuple(_pico(v) for v in r[22:28])
            old_price = Price(str(r[32]), str(r[33]), str(r[34]), str(r[35]))
            old_units = unit_cells(r[39:42])
            new = repricer.reprice(tuple(str(v) for v in r[4:12]), tuple(cell_int(v) for v in r[17:22]),
                                   cell_int(r[0]), bool(cell_int(r[37])), old, old_price, json.loads(str(r[12])),
                                   old_units)
            if new is None or dry_run:
                continue
            line, past, fix, fixes = _lines(r, new, old, run, sealed, old_units)
            unit_fixes += fixes
            calls.append(line)
            history.append(past)
            if fix is not None:
                corrections.append(fix)
        if calls:
            executor.command(sql.insert_sql(db, f"reprice-{run}-{page_no}-h", "\n".join(history), "price_history"))
            executor.command(sql.insert_sql(db, f"reprice-{run}-{page_no}", "\n".join(calls)))
            if corrections:
                executor.command(sql.insert_sql(db, f"reprice-{run}-{page_no}-r", "\n".join(corrections),
                                                "rollup_hour"))
            if unit_fixes:
                executor.command(sql.insert_sql(db, f"reprice-{run}-{page_no}-u", "\n".join(unit_fixes),
                                                "rollup_unit_hour"))
        page_no += 1
        if len(rows) < PAGE:
            break
        last = rows[-1]
        after = (cell_int(last[0]), str(last[1]), str(last[2]))
    result = repricer.result
    if not dry_run:
        result.reprice_id = run
        executor.command(sql.insert_sql(db, f"reprice-{run}", json.dumps({
            "id": run, "start_ns": start_ns, "end_ns": end_ns, "provider": provider or "", "model": model or "",
            "price_version": book.catalog_version, "calls": result.changed,
            "old_total": _usd(result.old_total_pico), "new_total": _usd(result.new_total_pico)}), "reprices"))
    return result


def reprice_clickhouse(target: ClickHouseTarget, config: Config, start_ns: int, end_ns: int, provider: str | None,
                       model: str | None, dry_run: bool, book: PriceBook) -> RepriceResult:
    executor = ConnectExecutor(target, config.ledger.busy_timeout_seconds)
    try:
        return reprice_executor(executor, target.database, start_ns, end_ns, provider, model, dry_run, book)
    finally:
        executor.close()


__all__ = ["reprice_clickhouse", "reprice_executor"]
