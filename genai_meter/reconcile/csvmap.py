"""Any provider's CSV export -> provider lines, through a column mapping of the config
(`reconcile.mappings.NAME`, docs/reconciliation.md): one line per row, nothing summed.

The mapping names the column of each `ProviderLine` field; `input_includes_cache` and
`output_includes_reasoning` say when the provider's input or output column also counts the cached or
reasoning tokens (then they are subtracted, and a row where the parts exceed the whole is an error);
`cost_scale` turns the cost column into currency units (0.01 for cents). Every day with a row is
covered: export whole UTC days.
"""

from __future__ import annotations

from collections.abc import Iterable

from genai_meter.config_reconcile import CsvMappingConfig
from genai_meter.money import to_pico
from genai_meter.reconcile.coverage import DayTiles
from genai_meter.reconcile.lines import ProviderLine, ReconcileError, Source, units_of
from genai_meter.reconcile.models import model_key
from genai_meter.reconcile.table import Row


def kind_of(name: str) -> str:
    return f"csv:{name}"


def matches(mapping: CsvMappingConfig, header: Iterable[str]) -> bool:
    """Whether a CSV header has every column the mapping names."""
    present = set(header)
    return set(mapping.columns.values()) <= present and set(mapping.units.values()) <= present


def _part(row: Row, whole_column: str, whole: int, parts: dict[str, int]) -> int:
    rest = whole - sum(parts.values())
    if rest < 0:
        named = " + ".join(f"{k} ({v})" for k, v in parts.items() if v)
        raise row.fail(whole_column, f"inconsistent counts: {named} exceed it ({whole})")
    return rest


def _line(row: Row, mapping: CsvMappingConfig, source: Source) -> ProviderLine:
    cols = mapping.columns

    def num(name: str) -> int:
        return row.integer(cols[name]) if name in cols else 0

    def text(name: str) -> str:
        return row.text(cols[name]) if name in cols else ""

    provider = mapping.provider or text("provider").lower()
    if not provider:
        raise row.fail(cols["provider"], "missing")
    model = text("model")
    if not model:
        raise row.fail(cols["model"], "missing")
    cache_read, cache_write, reasoning = num("cache_read"), num("cache_write"), num("reasoning")
    write_1h = num("cache_write_1h")
    if write_1h > cache_write:
        raise row.fail(cols["cache_write_1h"], f"exceeds the cache writes ({cache_write})")
    input_ = num("input")
    if mapping.input_includes_cache and "input" in cols:
        input_ = _part(row, cols["input"], input_, {"cache_read": cache_read, "cache_write": cache_write})
    output = num("output")
    if mapping.output_includes_reasoning and "output" in cols:
        output = _part(row, cols["output"], output, {"reasoning": reasoning})
    cost_pico, currency = None, ""
    if "cost" in cols:
        amount = row.amount(cols["cost"])
        if amount is not None:
            cost_pico = to_pico(amount * mapping.cost_scale)
            currency = (mapping.currency or text("currency")).upper()
            if len(currency) != 3 or not currency.isalpha():
                raise row.fail(cols.get("currency", "currency"), f"expected an ISO 4217 code, got {currency!r}")
    # unmapped classes inside a mapped total: cache tokens in an input that includes them, reasoning in output
    folded = tuple(name for name in ("cache_read", "cache_write")
                   if name not in cols and "input" in cols and mapping.input_includes_cache)
    if "output" in cols and "reasoning" not in cols:
        folded += ("reasoning",)
    batch = row.flag(cols["batch"]) if "batch" in cols and text("batch") else None
    return ProviderLine(
        day=row.day(cols["day"], mapping.day_format), provider=provider, model=model,
        model_key=model_key(provider, model), source=source, project=text("project"),
        api_key_id=text("api_key_id"), service_tier=text("service_tier").lower(), batch=batch,
        line_item=text("line_item"), requests=row.integer(cols["requests"]) if "requests" in cols else None,
        input=input_, cache_read=cache_read, cache_write=cache_write, cache_write_1h=write_1h, output=output,
        reasoning=reasoning, folded=folded,
        units=units_of({key: row.integer(column) for key, column in mapping.units.items()}),
        cost_pico=cost_pico, currency=currency)


def read_mapped(rows: Iterable[Row], name: str, mapping: CsvMappingConfig, source: Source,
                tiles: DayTiles) -> list[ProviderLine]:
    """One line per row of a CSV export read through mapping `name`."""
    lines = [_line(row, mapping, source) for row in rows]
    if not lines:
        raise ReconcileError(f"{source.file}: no rows (mapping {name})")
    for provider, day in sorted({(line.provider, line.day) for line in lines}):
        tiles.add_day(provider, kind_of(name), day, f"rows of {provider} {day}")
    return lines
