"""`read_export(path)`: a provider's export file -> `Export`, its kind told from the content.

JSON files hold one page (an object), several (a JSON list of pages, or JSON lines: one page per
line) of one report: an OpenAI usage or costs page, an Anthropic usage or cost report, an OpenRouter
activity response. CSV files are an OpenRouter activity export, or any export a config mapping
(`reconcile.mappings`) describes. A bad file raises one `ReconcileError` naming the file and the
field (or row and column), never a partial result. JSON numbers are read as exact decimals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from genai_meter.config_reconcile import CsvMappingConfig
from genai_meter.reconcile import anthropic, csvmap, openai, openrouter
from genai_meter.reconcile.coverage import DayTiles
from genai_meter.reconcile.fields import Node
from genai_meter.reconcile.lines import Export, ProviderLine, ReconcileError, Source, check_currencies
from genai_meter.reconcile.table import header_of, read_rows

MAX_BYTES = 512 * 1024 * 1024
_JSON_KINDS = "an OpenAI usage or costs page, an Anthropic usage or cost report, or an OpenRouter activity response"


def read_export(path: str | Path, mappings: Mapping[str, CsvMappingConfig] | None = None,
                mapping: str | None = None) -> Export:
    """The lines of the export at `path` and the days it covers. `mappings` are the config's CSV
    mappings (`config.reconcile.mappings`); `mapping` picks one by name instead of by header."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_BYTES:
            raise ReconcileError(f"{file}: larger than {MAX_BYTES // 2**20} MiB")
        data = file.read_bytes()
    except OSError as exc:
        raise ReconcileError(f"{file}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReconcileError(f"{file}: not UTF-8 text (byte {exc.start})") from None
    return read_text(text, str(file), mappings, mapping)


def read_text(text: str, where: str, mappings: Mapping[str, CsvMappingConfig] | None = None,
              mapping: str | None = None) -> Export:
    """`read_export` of the content `text`; `where` names it in errors and in each line's source."""
    if not text.strip():
        raise ReconcileError(f"{where}: empty file")
    tiles = DayTiles(where)
    if text.lstrip()[:1] in ("{", "[") and mapping is None:
        lines = _read_json(_pages(text, where), where, tiles)
    else:
        lines = _read_csv(text, where, dict(mappings or {}), mapping, tiles)
    check_currencies(lines, where)
    return Export(tuple(lines), tiles.covers())


def _pages(text: str, where: str) -> list[Node]:
    try:
        whole = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError:  # JSON lines: one page per line
        pages: list[Node] = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                pages.append(Node(json.loads(line, parse_float=Decimal), f"{where}, line {number}"))
            except json.JSONDecodeError as exc:
                raise ReconcileError(f"{where}: line {number}: not JSON ({exc.msg}, column {exc.colno})") from None
        return pages
    if isinstance(whole, list):
        if not whole:
            raise ReconcileError(f"{where}: an empty list of pages")
        return [Node(page, where, f"[{index}]") for index, page in enumerate(whole)]
    return [Node(whole, where)]


def _family(page: Node) -> str:
    if openai.is_page(page):
        return "openai"
    if anthropic.is_report(page):
        return "anthropic"
    if openrouter.is_activity(page):
        return "openrouter"
    raise page.fail(f"unknown file kind: not {_JSON_KINDS}")


def _read_json(pages: list[Node], where: str, tiles: DayTiles) -> list[ProviderLine]:
    families = {_family(page) for page in pages}
    if len(families) > 1:
        raise ReconcileError(f"{where}: mixes {' and '.join(sorted(families))} pages: one report per file")
    family = families.pop()
    if family == "openrouter":
        return [line for page in pages for line in
                openrouter.read_activity(page, Source(where, openrouter.ACTIVITY), tiles)]
    kind_of = openai.page_kind if family == "openai" else anthropic.report_kind
    kinds = {kind for page in pages if (kind := kind_of(page)) is not None}
    if len(kinds) > 1:
        raise ReconcileError(f"{where}: mixes {' and '.join(sorted(kinds))} pages: one report per file")
    if not kinds:
        raise ReconcileError(f"{where}: no results in any bucket, so usage cannot be told from costs: "
                             "read the report through `reconcile pull`, which knows the endpoint")
    kind = kinds.pop()
    source = Source(where, kind)
    read = openai.read_page if family == "openai" else anthropic.read_report
    return [line for page in pages for line in read(page, kind, source, tiles)]


def _read_csv(text: str, where: str, mappings: dict[str, CsvMappingConfig], chosen: str | None,
              tiles: DayTiles) -> list[ProviderLine]:
    if chosen is not None:
        if chosen not in mappings:
            known = ", ".join(sorted(mappings)) or "none configured"
            raise ReconcileError(f"{where}: no mapping {chosen!r} in reconcile.mappings ({known})")
        names = [chosen]
    else:
        header = set(header_of(text))
        if header >= openrouter.CSV_COLUMNS:
            _, rows = read_rows(text, where)
            return openrouter.read_csv(rows, Source(where, openrouter.CSV_KIND), tiles)
        names = sorted(name for name, m in mappings.items() if csvmap.matches(m, header_of(text, m.delimiter)))
        if len(names) > 1:
            raise ReconcileError(f"{where}: the header fits mappings {', '.join(names)}: pick one (--mapping NAME)")
        if not names:
            raise ReconcileError(f"{where}: unknown file kind: not {_JSON_KINDS} (JSON), nor an OpenRouter activity "
                                 "export or a CSV with the columns of a reconcile.mappings entry (CSV)")
    name = names[0]
    config = mappings[name]
    header_list, rows = read_rows(text, where, config.delimiter)
    missing = sorted(set(config.columns.values()) - set(header_list) | set(config.units.values()) - set(header_list))
    if missing:
        raise ReconcileError(f"{where}: mapping {name}: no column {', '.join(missing)} in the header")
    return csvmap.read_mapped(rows, name, config, Source(where, csvmap.kind_of(name)), tiles)
