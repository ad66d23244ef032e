"""`genai-meter reconcile`: argument wiring of `parse`, `import`, `pull` (genai_meter.reconcile.command)
and `report`, which prints the reconciliation the API answers.

`report [--ledger URL] [--from DAY] [--to DAY] [--provider P]... [--json | --csv]` compares the stored
provider reports of the days with the ledger's calls: a table with each row's cause and explanation,
or the API's JSON answer (`rows`, `totals`, `drift`, `causes`), or its CSV (the same renderer as
`GET /api/v1/reconciliation?format=csv`). It lives with the reports because it renders one; it needs
no library of the reports extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import IO

from genai_meter.config import Config, ConfigError
from genai_meter.ledger import open_reader
from genai_meter.ledger.model import LedgerUnavailable
from genai_meter.ledger.urls import LedgerOpenError
from genai_meter.pricing import PriceBook
from genai_meter.reconcile import command as reconcile_command
from genai_meter.reconcile.compare import Reconciliation, reconcile
from genai_meter.reconcile.store import load
from genai_meter.reconcile.window import resolve_days
from genai_meter.reports.insights.reconciliation import reconciliation_report
from genai_meter.reports.render.text import table_csv

HEAD = ("day", "provider", "model", "req. provider", "req. ledger", "cost provider", "cost ledger", "difference",
        "diff. %", "cause")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `reconcile` subcommands: parse, import, pull and report."""
    sub = parser.add_subparsers(dest="reconcile_command", required=True, metavar="COMMAND")
    reconcile_command.add_subcommands(sub)
    p = sub.add_parser("report", help="compare the stored provider reports with the ledger, per day and model",
                       description="compare the stored provider reports with the ledger, per UTC day, provider and "
                                   "model, and name the cause of each difference")
    p.add_argument("--ledger", metavar="URL", default=None,
                   help="ledger URL (sqlite:///PATH or clickhouse://...); default: ledger.url or the data dir")
    p.add_argument("--from", dest="from_", metavar="DAY", default="",
                   help="first day (2026-11-01, or an RFC 3339 time); default: the 30 days before today")
    p.add_argument("--to", metavar="DAY", default="", help="end, exclusive (a date or an RFC 3339 time); default now")
    p.add_argument("--provider", action="append", default=[], metavar="P", help="only this provider (repeatable)")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="the API's JSON answer")
    shape.add_argument("--csv", action="store_true", help="the API's CSV answer (a row per day, provider and model)")
    p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                   help="genai-meter.yaml (default: $GENAI_METER_CONFIG)")


def print_rows(rec: Reconciliation, out: IO[str]) -> None:
    """A table of the rows (money to 6 places), each row's explanation, and the totals."""
    rows = [list(HEAD)]
    for r in rec.rows:
        body = r.as_json()
        rows.append([str(body[k]) if body[k] is not None else "-" for k in ("day", "provider", "model",
                                                                              "requests_provider", "requests_ledger")]
                    + [_six(body[k]) for k in ("cost_provider_usd", "cost_ledger_usd", "difference_usd")]
                    + [str(body["difference_pct"] or "-"), r.cause])
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEAD))]
    for row in rows:
        out.write("  ".join(cell.rjust(w) if 3 <= i <= 8 else cell.ljust(w)
                            for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip() + "\n")
    for r in rec.rows:
        out.write(f"{r.key.day} {r.key.provider} {r.key.model or '(no model)'}: {r.cause}: {r.explanation}\n")
    totals = rec.total().as_json()
    out.write(f"total: provider {_six(totals['cost_provider_usd'])}, ledger {_six(totals['cost_ledger_usd'])}, "
              f"difference {_six(totals['difference_usd'])} ({totals['difference_pct'] or '-'} %) over "
              f"{len(rec.covered)} provider-days\n")
    if not rec.covered:
        out.write("no provider report covers these days: `genai-meter reconcile import FILE` or "
                  "`genai-meter reconcile pull --provider P` first\n")


def _six(value: object) -> str:
    """An exact decimal string to 6 places (the digits past them are dropped only when zero)."""
    if value is None:
        return "-"
    text = str(value)
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac[:6]}" if not frac[6:].strip("0") else text


def _report(args: argparse.Namespace, config: Config) -> int:
    try:
        url = reconcile_command.ledger_url(config, args.ledger)
        first, last = resolve_days(args.from_, args.to, time.time_ns())
        loaded = load(url, config, first, last, args.provider)
        reader = open_reader(url, config)
        book = PriceBook.from_config(config)
        try:
            rec = reconcile(loaded, reader, book, config.reconcile, first, last, args.provider)
        finally:
            reader.close()
            book.close()
    except (ValueError, ConfigError, LedgerOpenError, LedgerUnavailable) as exc:
        print(f"genai-meter: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(rec.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.csv:
        table = reconciliation_report(rec).table("reconciliation")
        assert table is not None
        sys.stdout.write("".join(table_csv(table)))
    else:
        print_rows(rec, sys.stdout)
    return 0


def run(args: argparse.Namespace, config: Config) -> int:
    """Run `reconcile report`, or hand the other subcommands to genai_meter.reconcile.command."""
    if args.reconcile_command == "report":
        return _report(args, config)
    return reconcile_command.run(args, config)
