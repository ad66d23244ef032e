"""`genai-meter price PROVIDER MODEL ...`: one call's cost breakdown, as a table or as JSON.

The call's price context (`--service-tier`, `--batch`) and billed units (`--unit NAME=N`, repeatable)
are priced as the pipeline prices them. Exit codes: 0 priced (partly priced too: see `unpriced_units`),
3 no price matched (unpriced), 2 bad config or override file (from cli.main). Money in JSON is
decimal strings (exact); class rates are USD per million tokens, unit rates USD per the unit's `per`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from genai_meter.config import Config
from genai_meter.contract import COST_TYPES, INVALID_COST, TOKEN_TYPES
from genai_meter.pricing.book import PriceBook
from genai_meter.pricing.context import context_of
from genai_meter.pricing.rates import Plan, pico_in_range
from genai_meter.pricing.units import input_tokens_of
from genai_meter.records import Cost, TokenCounts

EXIT_UNPRICED = 3


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of tokens, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"token counts cannot be negative, got {value}")
    return value


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date or datetime (2026-10-01T12:00:00Z), got {text!r}") \
            from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _unit(text: str) -> tuple[str, int]:
    name, sep, count = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=N (e.g. web_searches=3), got {text!r}")
    return name.strip(), _count(count.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `price` subcommand's arguments (`--config` is added by cli.py)."""
    parser.add_argument("provider", metavar="PROVIDER", help="provider id as genai-meter reports it (openai, "
                        "anthropic, aws.bedrock, azure.ai.openai, gcp.vertex_ai, ...)")
    parser.add_argument("model", metavar="MODEL", help="model name as reported by the span (e.g. gpt-4o-2024-08-06)")
    parser.add_argument("--input", type=_count, default=0, metavar="N", help="uncached input tokens")
    parser.add_argument("--output", type=_count, default=0, metavar="N", help="output tokens, reasoning excluded")
    parser.add_argument("--cache-read", type=_count, default=0, metavar="N", help="input tokens read from the cache")
    parser.add_argument("--cache-write", type=_count, default=0, metavar="N", help="input tokens written to the cache")
    parser.add_argument("--reasoning", type=_count, default=0, metavar="N", help="reasoning / thinking tokens")
    parser.add_argument("--cache-write-1h", action="store_true", help="cache writes were for 1 hour (1h rate)")
    parser.add_argument("--service-tier", default="", metavar="TIER",
                        help="service tier the call was billed at (flex, priority, fast, default ...)")
    parser.add_argument("--batch", action="store_true", help="the call went through a batch API")
    parser.add_argument("--unit", type=_unit, action="append", default=[], metavar="NAME=N",
                        help="a billed unit beyond the token classes: a genai-prices usage key (input_audio_tokens, "
                             "web_searches, audio_seconds ...) or custom.<name>; repeatable")
    parser.add_argument("--at", type=_when, default=None, metavar="ISO-DATETIME",
                        help="when the call ended (default: now; naive times are UTC)")
    parser.add_argument("--json", action="store_true", help="print JSON (money as decimal strings)")


def _money(value: Decimal) -> str:
    """A Decimal as plain exact text: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _pico_text(pico: int) -> str:
    """10^-12 USD as `_money` shows it, exact at any size (Decimal arithmetic rounds past 28 digits)."""
    whole, fraction = divmod(abs(pico), 10**12)
    digits = f"{fraction:012d}".rstrip("0")
    text = f"{whole}.{digits}" if digits else str(whole)
    return f"-{text}" if pico < 0 and text != "0" else text


def run(args: argparse.Namespace, config: Config) -> int:
    """Print the breakdown; returns 0, or 3 when no price matches."""
    book = PriceBook.from_config(config)
    try:
        return _run(args, config, book)
    finally:
        book.close()


def _units(pairs: list[tuple[str, int]]) -> dict[str, int]:
    units: dict[str, int] = {}
    for name, count in pairs:
        if name in units:
            raise ValueError(f"--unit {name} given twice")
        units[name] = count
    return units


def _unit_rows(plan: Plan, cost: Cost, units: dict[str, int], input_total: int) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for name, count in units.items():
        price = plan.units.price_of(name)
        row: dict[str, Any] = {"count": count}
        if price is None:
            row.update({"priced": False, "cost_usd": "0"})
        else:
            row.update({"priced": True, "priced_as": price.unit, "per": price.per,
                        "price_usd": _money(price.price_at(input_total)),
                        "cost_usd": _pico_text(cost.unit_pico.get(name, 0))})
        rows[name] = row
    return rows


def _run(args: argparse.Namespace, config: Config, book: PriceBook) -> int:
    at: datetime = args.at or datetime.now(UTC)
    tokens = TokenCounts(input=args.input, cache_read=args.cache_read, cache_write=args.cache_write,
                         output=args.output, reasoning=args.reasoning)
    try:
        units = _units(args.unit)
    except ValueError as exc:
        print(f"genai-meter price: {exc}", file=sys.stderr)
        return 2
    context = context_of(args.service_tier, args.batch)
    cost = book.price(args.provider, args.model, tokens, at, cache_write_1h=args.cache_write_1h,
                      service_tier=args.service_tier, batch=args.batch, units=units)
    input_total = tokens.input_total + input_tokens_of(units)
    quote = book.quote(args.provider, args.model, at, input_total=input_total, service_tier=args.service_tier,
                       batch=args.batch)
    report: dict[str, Any] = {
        "provider": args.provider,
        "model": args.model,
        "at": at.isoformat().replace("+00:00", "Z"),
        "tokens": tokens.as_dict(),
        "cache_write_1h": args.cache_write_1h,
        "service_tier": context.tier,
        "batch": context.batch,
        "catalog_version": book.catalog_version,
        "overrides_version": book.overrides_version,
    }
    if cost is None or quote is None:
        message = (f"no price for model {args.model!r} of provider {args.provider!r} at {report['at']}: "
                   "not in the genai-prices catalog (for this provider) nor in the price overrides")
        print(f"genai-meter: {message}", file=sys.stderr)
        if args.json:
            print(json.dumps({"priced": False, **report, "error": message}, indent=2, sort_keys=True))
        return EXIT_UNPRICED
    rates = quote.rates.as_dict()
    unit = {key: rates[key] for key in TOKEN_TYPES}
    if args.cache_write_1h:
        unit["cache_write"] = rates["cache_write_1h"]
    pico = cost.picos()
    total = sum(pico) + sum(cost.unit_pico.values())
    report.update({
        "priced": True,
        "partly_priced": bool(cost.unpriced_units),
        "unpriced_units": list(cost.unpriced_units),
        "unit_prices_usd_per_mtok": {key: _money(value) for key, value in unit.items()},
        "per_request_usd": _money(quote.rates.per_request),
        "cost_usd": dict(zip(COST_TYPES, map(_pico_text, pico))),  # COST_TYPES = records.COST_CLASSES
        "units": _unit_rows(quote.plan, cost, units, input_total),
        "total_usd": _pico_text(total),
        "price_source": cost.price_source,
        "price_entry": cost.price_entry,
        "price_version": cost.price_version,
    })
    if quote.plan.note:
        report["price_note"] = quote.plan.note
    if not pico_in_range((*pico, *cost.unit_pico.values())):  # what the Meter does with such a call
        report["invalid"] = INVALID_COST
    currency = config.pricing.currency
    if currency.code != "USD":
        report["display_currency"] = {"code": currency.code, "per_usd": _money(currency.per_usd),
                                      "total": _money(Decimal(f"{total}E-12") * currency.per_usd)}
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(_table(report))
    return 0


_PER_LABELS = {1: "unit", 1_000: "K", 3_600: "h", 1_000_000: "M", 1_000_000_000: "G"}


def _table(report: dict[str, Any]) -> str:
    rows = [("class", "tokens", "USD/Mtok", "USD")]
    for key in TOKEN_TYPES:
        rows.append((key, str(report["tokens"][key]), report["unit_prices_usd_per_mtok"][key],
                     report["cost_usd"][key]))
    rows.append(("request", "1", f"{report['per_request_usd']}/req", report["cost_usd"]["request"]))
    for name, unit in report["units"].items():
        rate = (f"{unit['price_usd']}/{_PER_LABELS.get(unit['per'], unit['per'])}" if unit["priced"]
                else "no price")
        rows.append((name, str(unit["count"]), rate, unit["cost_usd"]))
    rows.append(("total", "", "", report["total_usd"]))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    context = "+".join(part for part in (report["service_tier"], "batch" if report["batch"] else "") if part)
    lines = [f"{report['provider']} {report['model']} at {report['at']}"
             + (f"  [{context}]" if context else "")
             + ("  (cache writes at the 1h rate)" if report["cache_write_1h"] else "")]
    for n, row in enumerate(rows):
        if n == len(rows) - 1:
            lines.append("  ".join("-" * w for w in widths))
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]:>{widths[3]}}")
    if "display_currency" in report:
        shown = report["display_currency"]
        lines.append(f"= {shown['total']} {shown['code']} (at {shown['per_usd']} {shown['code']} per USD)")
    if report["unpriced_units"]:
        lines.append(f"partly priced: no price for {', '.join(report['unpriced_units'])} (the total leaves them out; "
                     "a tier or batch without a price is charged at the standard price)")
    lines.append(f"price: {report['price_entry']} (source {report['price_source']}, version {report['price_version']})")
    if report.get("price_note"):
        lines.append(f"note: {report['price_note']}")
    if report.get("invalid"):
        lines.append(f"invalid ({report['invalid']}): 2^63 * 10^-12 USD or more, beyond what the ledger stores; "
                     "the meter flags such a call and prices it nothing")
    lines.append(f"catalog genai-prices {report['catalog_version']}, overrides {report['overrides_version']}")
    return "\n".join(lines)
