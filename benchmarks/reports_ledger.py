"""genai-meter's own answers in the reports benchmark: the real `LedgerReader` ("genai") and the report
service's endpoint through the Flask app ("api"), both on the data set's ledger file, clock NOW_NS.

The service's answers are read back from its JSON or CSV (money from its decimal USD text); fields it
does not return (e.g. failures in the cost report's model table) are None and not compared.
"""

from __future__ import annotations

import codecs
import csv
import io
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from benchmarks.reports_data import NOW_NS
from benchmarks.reports_questions import OTHER, Answer, Question, top_rest
from genai_meter.config import load_config
from genai_meter.ledger import open_reader
from genai_meter.ledger.model import Totals
from genai_meter.reports.insights.grouped import OTHER as REST
from genai_meter.reports.render.call_csv import CallCsv
from genai_meter.reports.render.text import csv_lines
from genai_meter.reports.service.app import create_app

PAGE = 5000  # calls per page, as the service's export reads them


def _vec(t: Totals) -> list[int | None]:
    return [t.calls, t.errors, t.tokens_total, t.cost_total_pico]


def _pico(usd: str | None) -> int:
    return int(Decimal(usd or 0) * 10**12)  # blank or null: every call behind it unpriced (cost 0 stored)


def answer_reader(directory: Path, q: Question, end_ns: int) -> Answer:
    """The answer through `open_reader(url, config)`: `ranked` (top k and the remainder by the engine),
    `series_ranked` per day, `each_group` streamed for the CSV of every group, `events` for the calls."""
    config = load_config(directory / "config.yaml")
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    filters = {"customer": [q.customer]} if q.customer else {}
    if q.export == "calls":  # the export's own path: raw ledger pages formatted by render.call_csv
        formatter = CallCsv(reader.fields())
        rows = cost = size = 0
        size += len(csv_lines([formatter.header]))
        cursor = ""
        while True:
            records = reader.call_records(filters, start_ns=q.start_ns, end_ns=end_ns, cursor=cursor, limit=PAGE)
            size += len(formatter.lines(records))
            rows += len(records.rows)
            cost += sum(r[12] + r[13] + r[14] + r[15] + r[16] + r[17] for r in records.rows)
            if records.units:
                keys = {r[:3] for r in records.rows}
                cost += sum(u.cost_total_pico for key, u in records.units.items() if key in keys)
            if not records.next_cursor:
                break
            cursor = records.next_cursor
        return {"rows": rows, "calls": rows, "cost": cost, "bytes": size}
    if q.group == "day":
        series = reader.series(q.start_ns, end_ns, "1d", filters, [])
        return {"groups": {str(p.start_ns): _vec(p.totals) for points in series.values() for p in points}}
    by = {"customer": ["customer"], "model": ["provider", "model"], "day_customer": ["customer"]}.get(q.group, [])
    if q.group == "day_customer":  # per day: the top k and the exact remainder, ranked by the engine
        groups = {}
        for day, ranked in reader.series_ranked(q.start_ns, end_ns, "1d", filters, by, q.top or None):
            groups.update({f"{day}|{t.key[0]}": _vec(t) for t in ranked.rows})
            if ranked.rest is not None:
                groups[f"{day}|{OTHER}"] = _vec(ranked.rest)
        return {"groups": groups}  # type: ignore[dict-item]
    if q.export:  # every group, streamed from the engine
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        rows = calls = cost = 0
        for t in reader.each_group(q.start_ns, end_ns, filters, by):
            pico = t.cost_total_pico
            writer.writerow((*t.key, t.calls, t.errors, t.tokens_total, f"{pico // 10**12}.{pico % 10**12:012d}"))
            rows, calls, cost = rows + 1, calls + t.calls, cost + pico
        return {"rows": rows, "calls": calls, "cost": cost, "bytes": len(buffer.getvalue())}
    if not by:
        return {"groups": {"": _vec(reader.totals(q.start_ns, end_ns, filters)[0])}}
    ranked = reader.ranked(q.start_ns, end_ns, filters, by, q.top or None)
    groups = {"/".join(t.key): _vec(t) for t in ranked.rows}
    if ranked.rest is not None:
        groups[OTHER] = _vec(ranked.rest)
    return {"groups": groups}  # type: ignore[dict-item]


def _other(key: str) -> str:
    """The service's remainder row `(other)` as the benchmark's OTHER key."""
    return OTHER if key == REST else key


def service(directory: Path) -> object:
    config = load_config(directory / "config.yaml")
    assert config.ledger.url is not None
    reader = open_reader(config.ledger.url, config)
    return create_app(config, reader, clock=lambda: NOW_NS).test_client()


def _timed(chunks: Iterable[bytes | str], spent: list[float]) -> Iterator[bytes | str]:
    """`chunks`, adding the time spent producing each (the service's work) to spent[0]."""
    it = iter(chunks)
    while True:
        t0 = time.perf_counter()
        chunk = next(it, None)
        spent[0] += time.perf_counter() - t0
        if chunk is None:
            return
        yield chunk


def _lines(chunks: Iterable[bytes | str], sizes: list[int]) -> Iterator[str]:
    """The text lines of a streamed answer, whatever its chunks split (a line or a UTF-8 character across
    two chunks); the size of each chunk is appended to `sizes`."""
    decode = codecs.getincrementaldecoder("utf-8")().decode
    rest = ""
    for chunk in chunks:
        text = rest + (decode(chunk) if isinstance(chunk, bytes) else chunk)
        sizes.append(len(chunk))
        *complete, rest = text.split("\n")
        yield from (line + "\n" for line in complete)
    rest += decode(b"", final=True)
    if rest:
        yield rest


def answer_service(client: object, q: Question) -> Answer:
    """The endpoint's answer, read back. `note` carries a table's note (e.g. groups left out)."""
    t0 = time.perf_counter()
    response = client.get(q.api)  # type: ignore[attr-defined]
    served = [time.perf_counter() - t0]
    if response.status_code != 200:
        return {"error": f"HTTP {response.status_code}: {response.get_data(as_text=True)[:200]}"}
    if q.export:  # read as it streams: the answer's memory is the service's, not a parsed copy
        sizes: list[int] = []
        rows_read = csv.reader(_lines(_timed(response.response, served), sizes))
        head = next(rows_read)
        at_calls = head.index("calls") if q.export == "groups" else None
        at_cost = head.index("cost_usd")
        rows = calls = cost = 0
        for r in rows_read:
            rows += 1
            calls += int(r[at_calls]) if at_calls is not None else 1
            cost += _pico(r[at_cost])
        return {"rows": rows, "calls": calls, "cost": cost, "bytes": sum(sizes), "served_s": served[0]}
    body = response.get_json()
    tables = body["tables"]
    if not q.group:
        s = body["summary"]
        return {"groups": {"": [s["calls"], s["failures"], s["tokens_total"], _pico(s["cost_usd"])]}}
    if q.group == "model":
        rows = tables["by_model"]["rows"]
        groups = {f"{r['provider']}/{r['model']}": [r["calls"], None, r["tokens_total"], _pico(r["cost_usd"])]
                  for r in rows if r["calls"]}
        return {"groups": groups, "note": tables["by_model"]["note"]}
    if q.group in ("day", "day_customer"):
        table = tables["series"]
        groups = {}
        for r in table["rows"]:
            day = int(datetime.fromisoformat(r["start"].replace("Z", "+00:00")).timestamp()) * 10**9
            key = f"{day}|{_other(r['customer'])}" if q.group == "day_customer" else str(day)
            groups[key] = [r["calls"], r["failures"], r["tokens_total"], _pico(r["cost_usd"])]
        return {"groups": groups if table["remainder"] else top_rest(q, groups),  # type: ignore[arg-type]
                "note": table["note"]}
    table = tables["groups"]
    groups = {_other(r["customer"]): [r["calls"], r["failures"], r["tokens_total"], _pico(r["cost_usd"])]
              for r in table["rows"]}
    return {"groups": groups if table["remainder"] else top_rest(q, groups),  # type: ignore[arg-type]
            "note": table["note"]}
