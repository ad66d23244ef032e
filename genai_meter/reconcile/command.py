"""`genai-meter reconcile parse | import | pull`: the provider reports, read and stored (argument wiring).

`parse FILE...` reads provider export files (docs/reconciliation.md) and prints their normalized
lines: a table, or with `--json` one object per file (its lines and the days it covers). `import
FILE...` stores them in the ledger, replacing the (provider, day, kind) reports they cover, all files
or none. `pull --provider P --days N` fetches the N whole UTC days before today from the provider's
admin API and stores them the same way. A bad file prints one line naming the file and the field to
stderr, stores nothing, and exits with status 2. (`report` is added by `genai_meter.reports.reconcile_command`.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import IO

from genai_meter.config import Config
from genai_meter.ledger.model import LedgerUnavailable
from genai_meter.ledger.urls import LedgerOpenError, describe, resolve_url
from genai_meter.money import from_pico
from genai_meter.reconcile.client import PullError
from genai_meter.reconcile.lines import Export, ProviderLine, ReconcileError
from genai_meter.reconcile.pull import ENDPOINTS, pull
from genai_meter.reconcile.read import read_export
from genai_meter.reconcile.store import Stored, store
from genai_meter.reconcile.window import day_of, days_before, each_day

COLUMNS = ("day", "provider", "model", "model_key", "project", "api_key", "tier", "batch", "requests", "input",
           "cache_read", "cache_write", "output", "reasoning", "units", "cost", "kind", "via", "item")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                   help="genai-meter.yaml (default: $GENAI_METER_CONFIG)")


def _ledger(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ledger", metavar="URL", default=None,
                   help="ledger URL (sqlite:///PATH or clickhouse://...); default: ledger.url or the data dir")


def add_subcommands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `parse`, `import` and `pull` to the `reconcile` subparsers `sub`."""
    files_help = ("OpenAI/Anthropic admin API pages, OpenRouter exports, or CSV files a reconcile.mappings entry "
                  "describes")
    p = sub.add_parser("parse", help="print the normalized lines of provider export files",
                       description="print the normalized lines of provider export files")
    p.add_argument("files", nargs="+", metavar="FILE", help=files_help)
    p.add_argument("--json", action="store_true", help="one JSON object per file: lines and covered days")
    p.add_argument("--mapping", metavar="NAME", help="read CSV files with this reconcile.mappings entry")
    _common(p)
    p = sub.add_parser("import", help="store provider export files in the ledger (replacing the days they cover)",
                       description="store provider export files in the ledger: the (provider, day, report kind) "
                                   "reports they cover replace the stored ones; all files or none")
    p.add_argument("files", nargs="+", metavar="FILE", help=files_help)
    p.add_argument("--mapping", metavar="NAME", help="read CSV files with this reconcile.mappings entry")
    _ledger(p)
    _common(p)
    p = sub.add_parser("pull", help="fetch a provider's usage and cost reports and store them in the ledger",
                       description="fetch the whole UTC days before today from the provider's admin API (key from "
                                   "the environment) and store them in the ledger, replacing those days")
    p.add_argument("--provider", required=True, choices=sorted(ENDPOINTS))
    p.add_argument("--days", type=int, default=3, metavar="N", help="the N whole UTC days before today (default 3)")
    _ledger(p)
    _common(p)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `reconcile` subcommands to `parser`."""
    add_subcommands(parser.add_subparsers(dest="reconcile_command", required=True, metavar="COMMAND"))


def _cell(line: ProviderLine, column: str) -> str:
    values: dict[str, object] = {
        "day": line.day.isoformat(), "provider": line.provider, "model": line.model, "model_key": line.model_key,
        "project": line.project, "api_key": line.api_key_id, "tier": line.service_tier,
        "batch": "" if line.batch is None else ("yes" if line.batch else "no"),
        "requests": "" if line.requests is None else line.requests,
        "units": " ".join(f"{k}={v}" for k, v in line.units),
        "cost": "" if line.cost_pico is None else f"{from_pico(line.cost_pico).normalize():f} {line.currency}",
        "kind": line.source.kind, "via": line.served_by, "item": line.line_item,
    }
    value = values[column] if column in values else getattr(line, column)
    text = str(value)
    if column in ("output", "input") and (("reasoning" in line.folded and column == "output")
                                          or ("cache_read" in line.folded and column == "input")):
        text += "*"
    return text


def print_table(exports: list[tuple[str, Export]], out: IO[str]) -> None:
    rows = [[_cell(line, c) for c in COLUMNS] for _, export in exports for line in export.lines]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(COLUMNS)]
    numeric = {"requests", "input", "cache_read", "cache_write", "output", "reasoning"}
    for row in [list(COLUMNS), *rows]:
        cells = [v.rjust(w) if c in numeric else v.ljust(w) for v, w, c in zip(row, widths, COLUMNS, strict=True)]
        out.write("  ".join(cells).rstrip() + "\n")
    for file, export in exports:
        days = sorted({(c.provider, c.day.isoformat(), c.kind) for c in export.covers})
        span = f"{days[0][1]}..{days[-1][1]}" if days else "no whole day"
        out.write(f"{file}: {len(export.lines)} lines, covers {len(days)} provider-day reports ({span})\n")
    out.write("* the class also counts tokens the source does not report apart (cache in input, reasoning in "
              "output)\n" if any("*" in cell for row in rows for cell in row) else "")


def _parse(args: argparse.Namespace, config: Config) -> int:
    exports: list[tuple[str, Export]] = []
    try:
        for file in args.files:
            exports.append((file, read_export(file, config.reconcile.mappings, args.mapping)))
    except ReconcileError as exc:
        print(f"genai-meter: {exc}", file=sys.stderr)
        return 2
    if args.json:
        body = [{"file": file, "lines": [line.as_dict() for line in export.lines],
                 "covers": [{"provider": c.provider, "day": c.day.isoformat(), "kind": c.kind}
                            for c in sorted(export.covers, key=lambda c: (c.provider, c.day, c.kind))]}
                for file, export in exports]
        json.dump(body, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print_table(exports, sys.stdout)
    return 0


def ledger_url(config: Config, given: str | None) -> str:
    """The ledger to store in or read from; ValueError for `--ledger none`."""
    url = resolve_url(config, given)
    if url is None:
        raise ValueError("--ledger none: reconciliation keeps the providers' reports in the ledger")
    return url


def _stored(what: str, stored: Stored, url: str) -> None:
    span = f"{stored.days[0]}..{stored.days[-1]}" if stored.days else "no whole day"
    print(f"genai-meter: {what}: stored {stored.lines} lines of {stored.reports} provider-day reports "
          f"({', '.join(stored.providers) or 'none'}, {span}) in {describe(url)}")


def _import(args: argparse.Namespace, config: Config) -> int:
    try:
        url = ledger_url(config, args.ledger)
        exports = [read_export(file, config.reconcile.mappings, args.mapping) for file in args.files]
        stored = store(url, config, exports, migrate=True)
    except (ReconcileError, ValueError, LedgerOpenError, LedgerUnavailable) as exc:
        print(f"genai-meter: {exc}", file=sys.stderr)
        return 2
    _stored(f"imported {len(exports)} file{'s' if len(exports) != 1 else ''}", stored, url)
    return 0


def _pull(args: argparse.Namespace, config: Config) -> int:
    if not 1 <= args.days <= 366:
        print("genai-meter: --days: from 1 to 366", file=sys.stderr)
        return 2
    first, last = days_before(day_of(time.time_ns()), args.days)
    try:
        url = ledger_url(config, args.ledger)
        export = pull(args.provider, each_day(first, last), config=config.reconcile)
        stored = store(url, config, [export], migrate=True)
    except (PullError, ReconcileError, ValueError, LedgerOpenError, LedgerUnavailable) as exc:
        print(f"genai-meter: {exc}", file=sys.stderr)
        return 2
    _stored(f"pulled {args.provider}", stored, url)
    return 0


def run(args: argparse.Namespace, config: Config) -> int:
    """Run `reconcile parse | import | pull`; 0 on success, 2 when a file, the API or the ledger fails."""
    commands = {"parse": _parse, "import": _import, "pull": _pull}
    return commands[args.reconcile_command](args, config)
