"""The `genai-meter` command: parses arguments and hands each subcommand to its module.

Each subcommand lives in the module that owns its job and exposes `run(args, config) -> int`;
this file only wires the parser. `main(argv)` returns the exit code and prints errors to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from genai_meter import __version__
from genai_meter.config import ConfigError, load_config

# subcommand -> module exposing `add_arguments(parser)` and `run(args, config) -> int`
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("genai_meter.collector_processor.receiver.service", "run the OTLP receiver and /metrics"),
    "price": ("genai_meter.pricing.command", "print one call's cost breakdown"),
    "prices": ("genai_meter.pricing.prices_command", "update the price catalog from a genai-prices snapshot; status"),
    "reports": ("genai_meter.reports.command", "run the report service: web page, API, exports, budgets, forecasts"),
    "ledger": ("genai_meter.ledger.command", "what the ledger holds; re-price, prune, export, back up, forget"),
    "reconcile": ("genai_meter.reconcile.command", "the providers' own usage and cost reports, normalized"),
    "generate": ("genai_meter.generate", "write dashboards, rules and Alertmanager config"),
    "demo": ("genai_meter.stack.demo", "run the whole stack on this machine, without Docker"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genai-meter", description="LLM usage and cost metrics from OTel spans")
    parser.add_argument("--version", action="version", version=f"genai-meter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)  # a module that fails to import is an error, never hidden
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--config", metavar="FILE", help="genai-meter.yaml (default: $GENAI_METER_CONFIG)")
        module.add_arguments(command)
        command.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        return int(args._module.run(args, config) or 0)
    except ConfigError as exc:
        print(f"genai-meter: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
