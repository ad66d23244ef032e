"""`genai-meter ledger stats|reprice|prune|export|backup|forget|migrate`: argument wiring only.

`add_arguments(parser)` adds the subcommands to a parser, `run(args, config) -> int` runs one, and
`main(argv)` does both (for tests and `python -m genai_meter.ledger.command`). Errors go to stderr
with exit status 2 (bad input, no ledger) or 1 (ledger unavailable).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from genai_meter.config import Config, ConfigError, load_config
from genai_meter.ledger import (
    LedgerOpenError,
    LedgerUnavailable,
    backup,
    forget,
    migrate,
    open_reader,
    prune,
    reprice,
    resolve_url,
)
from genai_meter.ledger.csvsafe import csv_cell
from genai_meter.ledger.model import CallRow, LedgerReader
from genai_meter.ledger.rows import COST_CLASSES, TOKEN_CLASSES
from genai_meter.ledger.urls import describe
from genai_meter.money import usd_text

END_OF_TIME_NS = 2**63 - 1
EXPORT_PAGE = 1000


def parse_time(text: str, name: str) -> int:
    """Unix ns of an ISO 8601 date or date-time (naive = UTC), or of Unix seconds; ValueError naming `name`."""
    value = text.strip()
    try:
        if value.replace(".", "", 1).isdigit():
            return int(float(value) * 1_000_000) * 1000
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: expected an ISO date/time (2026-11-01, 2026-11-01T12:00Z) or Unix seconds, "
                         f"got {text!r}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp()) * 10**9 + at.microsecond * 1000


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ns < END_OF_TIME_NS else "end"


def add_arguments(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    """Add the `ledger` subcommands to `parser`; returns their action (`ledger import` adds itself)."""
    sub = parser.add_subparsers(dest="ledger_command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--ledger", metavar="URL", help="sqlite:///PATH or clickhouse://... (scheme in any case; "
                                                       "default: the data dir)")
        return p

    def window(p: argparse.ArgumentParser, required: bool = False) -> None:
        p.add_argument("--from", dest="start", metavar="T", required=required,
                       help="start, ISO date/time (UTC) or Unix s" + ("" if required else " (default: the first call)"))
        p.add_argument("--to", dest="end", metavar="T", help="end, exclusive (default: now)")

    p = command("stats", "calls, total cost and tokens by class over a window (default: every call)")
    window(p)
    p.add_argument("--json", action="store_true", help="one JSON object")
    p = command("reprice", "re-compute costs from stored token counts with today's price book")
    window(p, required=True)
    p.add_argument("--provider")
    p.add_argument("--model")
    p.add_argument("--dry-run", action="store_true", help="print old and new totals only")
    command("prune", "delete raw calls past ledger.retention_days (and above ledger.max_bytes)")
    p = command("export", "stream raw calls (newest first) as CSV or JSON lines")
    window(p)
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("--output", "-o", type=Path, help="file (default: standard output)")
    p = command("backup", "a consistent copy of the ledger file (VACUUM INTO)")
    p.add_argument("path", type=Path)
    p = command("forget", "erase an end user's id or a customer's dimension value (safe while serve writes the "
                          "file: its later calls get new label sets)")
    p.add_argument("--user")
    p.add_argument("--customer")
    command("migrate", "create or upgrade the ledger schema")
    return sub


def _window(args: argparse.Namespace) -> tuple[int, int]:
    start = parse_time(args.start, "--from") if getattr(args, "start", None) else 0
    end = parse_time(args.end, "--to") if getattr(args, "end", None) else time.time_ns()
    if end <= start:
        raise ValueError("--to must be after --from")
    return start, end


def run(args: argparse.Namespace, config: Config, out: IO[str] | None = None) -> int:
    """Run the parsed `ledger` subcommand; returns the exit status."""
    out = out or sys.stdout
    try:
        url = resolve_url(config, args.ledger)
        if url is None:
            raise ValueError("--ledger: the ledger is off (none); give a ledger URL")
        return _run(args, config, url, out)
    except (ValueError, LedgerOpenError) as exc:
        print(f"genai-meter ledger: {exc}", file=sys.stderr)
        return 2
    except LedgerUnavailable as exc:
        print(f"genai-meter ledger: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, config: Config, url: str, out: IO[str]) -> int:
    name = args.ledger_command
    if name == "stats":
        start, end = _window(args)
        reader = open_reader(url, config)
        try:
            t = reader.totals(start, end, {})[0]
            first = reader.coverage().first_ns if not args.start else start
        finally:
            reader.close()
        # without --from the window starts at the first call (null for an empty ledger), not at 1970
        shown_from = iso(max(first, start)) if first is not None else None
        doc = {"calls": t.calls, "cost_usd": usd_text(t.cost_total_pico),
               "tokens": {c: t.tokens[c] for c in TOKEN_CLASSES}, "from": shown_from, "to": iso(end)}
        if args.json:
            print(json.dumps(doc), file=out)
        else:
            since = doc["from"] or "(no calls yet)"
            print(f"ledger   {describe(url)}\nwindow   {since} .. {doc['to']}\ncalls    {t.calls}\n"
                  f"cost     USD {doc['cost_usd']}", file=out)
            for c in TOKEN_CLASSES:
                print(f"tokens   {c:<12} {t.tokens[c]}", file=out)
        return 0
    if name == "reprice":
        start, end = _window(args)
        result = reprice(url, config, start, end, args.provider, args.model, dry_run=args.dry_run)
        print("\n".join(["dry run: nothing stored" if args.dry_run else f"applied as re-pricing run "
                         f"{result.reprice_id}", *result.lines()]), file=out)
        return 0
    if name == "prune":
        print(f"deleted {prune(url, config)} raw calls", file=out)
        return 0
    if name == "export":
        start, end = _window(args)
        reader = open_reader(url, config)
        try:
            if args.output is None:
                export(reader, start, end, args.format, out)
            else:
                with args.output.open("w", encoding="utf-8", newline="") as f:
                    export(reader, start, end, args.format, f)
        finally:
            reader.close()
        return 0
    if name == "backup":
        print(f"backup written to {backup(url, config, args.path)}", file=out)
        return 0
    if name == "forget":
        print(f"changed {forget(url, config, user=args.user, customer=args.customer)} calls", file=out)
        return 0
    migrate(url, config)
    print(f"ledger {describe(url)} is at the current schema", file=out)
    return 0


EXPORT_COLUMNS = (["end", "end_ns", "trace_id", "span_id", "parent_span_id", "service", "environment", "provider",
                   "model", "request_model", "operation", "status", "error_type", "duration_s", "ttft_s"]
                  + [f"tokens_{c}" for c in TOKEN_CLASSES] + [f"cost_usd_{c}" for c in COST_CLASSES]
                  + ["cost_usd", "price_source", "price_version", "price_entry", "unpriced", "unmetered", "invalid",
                     "conversation", "user", "sample_weight", "dimensions"])


def _record(row: CallRow) -> dict[str, object]:
    rec: dict[str, object] = {
        "end": datetime.fromtimestamp(row.end_ns / 1e9, UTC).isoformat(), "end_ns": row.end_ns,
        "trace_id": row.trace_id, "span_id": row.span_id, "parent_span_id": row.parent_span_id,
        "service": row.service, "environment": row.environment, "provider": row.provider, "model": row.model,
        "request_model": row.request_model, "operation": row.operation, "status": row.status,
        "error_type": row.error_type, "duration_s": row.duration_s, "ttft_s": row.ttft_s}
    rec.update({f"tokens_{c}": row.tokens[c] for c in TOKEN_CLASSES})
    rec.update({f"cost_usd_{c}": usd_text(row.cost_pico[c]) for c in COST_CLASSES})
    rec.update({"cost_usd": usd_text(row.cost_total_pico), "price_source": row.price_source,
                "price_version": row.price_version, "price_entry": row.price_entry, "unpriced": row.unpriced,
                "unmetered": row.unmetered, "invalid": row.invalid, "conversation": row.conversation,
                "user": row.user, "sample_weight": row.sample_weight, "dimensions": row.dimensions})
    return rec


def iter_calls(reader: LedgerReader, start: int, end: int) -> Iterator[CallRow]:
    """Every raw call in [start, end), newest first, a page at a time (constant memory)."""
    cursor = ""
    while True:
        page = reader.events({}, start_ns=start, end_ns=end, cursor=cursor, limit=EXPORT_PAGE)
        yield from page.rows
        cursor = page.next_cursor
        if not cursor:
            return


def export(reader: LedgerReader, start: int, end: int, fmt: str, out: IO[str]) -> int:
    """Write the calls of [start, end) to `out` as CSV (header first) or JSON lines; returns the count."""
    count = 0
    writer = csv.DictWriter(out, EXPORT_COLUMNS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for row in iter_calls(reader, start, end):
        rec = _record(row)
        if writer is not None:
            rec["dimensions"] = json.dumps(rec["dimensions"], sort_keys=True)
            writer.writerow({k: csv_cell(v) if isinstance(v, str) else v for k, v in rec.items()})
        else:
            out.write(json.dumps(rec, sort_keys=True) + "\n")
        count += 1
    return count


def main(argv: Sequence[str] | None = None, config: Config | None = None, out: IO[str] | None = None) -> int:
    """`genai-meter ledger ...` on its own: parse `argv` (with an optional --config FILE) and run."""
    parser = argparse.ArgumentParser(prog="genai-meter ledger")
    parser.add_argument("--config", metavar="FILE", help="genai-meter.yaml (default: $GENAI_METER_CONFIG)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if config is None:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"genai-meter ledger: {exc}", file=sys.stderr)
            return 2
    return run(args, config, out)


if __name__ == "__main__":
    sys.exit(main())
