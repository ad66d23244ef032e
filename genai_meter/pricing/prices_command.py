"""`genai-meter prices update | status`: keep the price catalog current and say which one prices calls.

`update --file PATH` or `--url URL` validates a genai-prices data snapshot and stores it as the newest
price version (pricing.snapshots); `status` tells which catalog prices calls (a stored snapshot, the
pinned package data, or genai-prices' auto-update), where it came from and how old it is. Exit codes:
0 done, 2 a bad snapshot, URL or config (ConfigError, from cli.main).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from genai_meter.config import Config, ConfigError
from genai_meter.pricing.catalog import package_source
from genai_meter.pricing.snapshots import fetch, newest, prices_dir, store, versions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `prices` subcommands (`--config` is added by cli.py)."""
    sub = parser.add_subparsers(dest="prices_command", required=True, metavar="SUBCOMMAND")
    update = sub.add_parser("update", help="store a newer genai-prices data snapshot as the price catalog",
                            description="Validate a genai-prices data snapshot (the JSON genai-prices publishes) "
                                        "and store it under <data dir>/prices as the newest price version.")
    source = update.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", metavar="PATH", help="a snapshot file")
    source.add_argument("--url", metavar="URL", help="a snapshot URL (http, https or file)")
    update.add_argument("--json", action="store_true", help="print the stored version as JSON")
    status = sub.add_parser("status", help="which price catalog prices calls, where it came from, how old it is")
    status.add_argument("--json", action="store_true", help="print JSON")
    for command in (update, status):  # `prices status --config FILE` as well as `prices --config FILE status`
        command.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                             help="genai-meter.yaml (default: $GENAI_METER_CONFIG)")


def run(args: argparse.Namespace, config: Config) -> int:
    if args.prices_command == "update":
        return _update(args, config)
    return _status(args, config)


def _update(args: argparse.Namespace, config: Config) -> int:
    if args.file is not None:
        source = str(args.file)
        try:
            with open(args.file, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read the price snapshot: {exc.strerror}") from None
    else:
        source = args.url
        data = fetch(args.url)
    version, new = store(config, data, source)
    if args.json:
        print(json.dumps({"stored": new, **version.as_dict()}, indent=2, sort_keys=True))
    elif new:
        print(f"stored price version {version.version} ({version.providers} providers, {version.models} models, "
              f"sha256 {version.sha256[:12]}) from {source}\n"
              f"calls are priced with it from now on (running genai-meter processes: on their next start)")
    else:
        print(f"unchanged: the newest stored price version {version.version} has the same data")
    return 0


def status_report(config: Config, now: datetime | None = None) -> dict[str, Any]:
    """Which catalog prices calls and the stored versions (the `status --json` document)."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    stored = versions(config)
    current = newest(config)
    in_use: dict[str, Any]
    if current is not None:
        in_use = {"origin": "stored", "version": current.version, "date": current.stored_at.date().isoformat(),
                  "source": current.source, "sha256": current.sha256,
                  "stored_at": current.stored_at.isoformat().replace("+00:00", "Z")}
        day = current.stored_at.date()
    else:
        package = package_source()
        in_use = {"origin": "package", "version": package.version, "date": package.date.isoformat(),
                  "source": f"genai-prices {package.version} package data"}
        day = package.date
    in_use["age_days"] = (today - day).days
    report: dict[str, Any] = {
        "in_use": in_use,
        "auto_update": config.pricing.auto_update,
        "directory": str(prices_dir(config)),
        "stored": [version.as_dict() for version in stored],
        "stale_after_days": config.pricing.stale_after_days,
        "stale": in_use["age_days"] > config.pricing.stale_after_days,
    }
    return report


def _status(args: argparse.Namespace, config: Config) -> int:
    report = status_report(config)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    use = report["in_use"]
    what = "stored snapshot" if use["origin"] == "stored" else "pinned package data"
    lines = [f"prices in use: {what}, catalog version {use['version']}",
             f"  from {use['source']}" + (f" (sha256 {use['sha256']})" if "sha256" in use else ""),
             f"  dated {use['date']}, {use['age_days']} day(s) old"
             + ("  STALE (pricing.stale_after_days is {})".format(report["stale_after_days"]) if report["stale"]
                else "")]
    if report["auto_update"]:
        lines.append("  pricing.auto_update is on: running processes follow genai-prices' live data instead, "
                     "once fetched")
    lines.append(f"stored versions: {len(report['stored'])} in {report['directory']}")
    for version in reversed(report["stored"]):
        lines.append(f"  {version['version']}  stored {version['stored_at']}  from {version['source']}")
    print("\n".join(lines))
    return 0
