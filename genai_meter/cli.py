"""The `genai-meter` command: parses arguments and hands each subcommand to its module.

Each subcommand lives in the module that owns its job and exposes `run(args, config) -> int`;
this file only wires the parser. `main(argv)` returns the exit code and prints errors to stderr.

A plain `pip install genai-meter` is the receiver and the in-process processor; the report service
(and the demo, which runs it) need the `reports` extra. A subcommand whose module cannot import a
library of its extra stays listed and answers with one line naming the extra to install; any other
import error is raised, never hidden.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from genai_meter import __version__
from genai_meter.config import ConfigError, load_config

# subcommand -> module exposing `add_arguments(parser)` and `run(args, config) -> int`
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("genai_meter.collector_processor.receiver.service", "run the OTLP receiver and /metrics"),
    "price": ("genai_meter.pricing.command", "print one call's cost breakdown"),
    "prices": ("genai_meter.pricing.prices_command", "update the price catalog from a genai-prices snapshot; status"),
    "reports": ("genai_meter.reports.command", "run the report service: web page, API, exports, budgets, forecasts"),
    "ledger": ("genai_meter.collector_processor.receiver.backfill",
               "what the ledger holds; re-price, prune, export, back up, forget, import history"),
    "reconcile": ("genai_meter.reports.reconcile_command", "the providers' own usage and cost reports: read, import, "
                  "pull, and compare with the ledger"),
    "generate": ("genai_meter.generate", "write dashboards, rules and Alertmanager config"),
    "demo": ("genai_meter.stack.demo", "run the whole stack on this machine, without Docker"),
}


# subcommand -> the extra it needs beyond a plain install
EXTRAS: dict[str, str] = {"reports": "reports", "demo": "reports"}


class MissingExtra:
    """Stands in for a subcommand's module when a library of its extra is not installed."""

    def __init__(self, command: str, extra: str, missing: str) -> None:
        self.message = (f"genai-meter {command} needs the {extra} extra: pip install 'genai-meter[{extra}]' "
                        f"({missing} is not installed)")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(self, args: argparse.Namespace, config: object) -> int:
        print(self.message, file=sys.stderr)
        return 2


def load_command(name: str, module_name: str) -> Any:
    """The subcommand's module, or a `MissingExtra` when a library of its extra is missing."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if name not in EXTRAS or not missing or missing == "genai_meter":
            raise  # a broken install or a bug: never hidden
        return MissingExtra(name, EXTRAS[name], missing)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genai-meter", description="LLM usage and cost metrics from OTel spans")
    parser.add_argument("--version", action="version", version=f"genai-meter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = load_command(name, module_name)
        text = help_text if not isinstance(module, MissingExtra) else f"{help_text} [{module.message}]"
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--config", metavar="FILE", help="genai-meter.yaml (default: $GENAI_METER_CONFIG)")
        module.add_arguments(command)
        command.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); returns the exit code."""
    args = build_parser().parse_args(argv)
    if isinstance(args._module, MissingExtra):  # before the config: the message is the same whatever it says
        return args._module.run(args, None)
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
