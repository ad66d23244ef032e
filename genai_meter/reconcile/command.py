"""`genai-meter reconcile parse FILE... [--json] [--mapping NAME]`: argument wiring only.

`parse` reads provider export files (docs/reconciliation.md) and prints their normalized lines: a
table, or with `--json` one object per file (its lines and the days it covers). A bad file prints
one line naming the file and the field to stderr, nothing to stdout, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO

from genai_meter.config import Config
from genai_meter.money import from_pico
from genai_meter.reconcile.lines import Export, ProviderLine, ReconcileError
from genai_meter.reconcile.read import read_export

COLUMNS = ("day", "provider", "model", "model_key", "project", "api_key", "tier", "batch", "requests", "input",
           "cache_read", "cache_write", "output", "reasoning", "units", "cost", "kind", "via", "item")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `reconcile` subcommands to `parser`."""
    sub = parser.add_subparsers(dest="reconcile_command", required=True, metavar="COMMAND")
    p = sub.add_parser("parse", help="print the normalized lines of provider export files",
                       description="print the normalized lines of provider export files")
    p.add_argument("files", nargs="+", metavar="FILE", help="OpenAI/Anthropic admin API pages, OpenRouter exports, "
                   "or CSV files a reconcile.mappings entry describes")
    p.add_argument("--json", action="store_true", help="one JSON object per file: lines and covered days")
    p.add_argument("--mapping", metavar="NAME", help="read CSV files with this reconcile.mappings entry")
    p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                   help="genai-meter.yaml (default: $GENAI_METER_CONFIG)")


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


def run(args: argparse.Namespace, config: Config) -> int:
    """Run `reconcile parse`; 0 on success, 2 when a file cannot be read."""
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
