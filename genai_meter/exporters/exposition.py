"""Text exposition: Prometheus text format 0.0.4 and OpenMetrics 1.0.0, and content negotiation.

Rendering joins strings that were built when each series was created (genai_meter.exporters.series);
per scrape only the values are formatted: ints with `str`, floats with `repr` (Prometheus parses
both), exact Decimals through `float`. No `_created` samples anywhere (they double the series count
in Prometheus 2.42). Counters: classic `# TYPE llm_requests_total counter`; OpenMetrics names the
family without `_total` (`# TYPE llm_requests counter`) and keeps `llm_requests_total` samples.
`# UNIT` lines are OpenMetrics only.

Pure functions; they never raise on label content (label values are escaped, invalid UTF-8 is
replaced).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from operator import add
from typing import Any, NamedTuple

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_OM_VERSIONS = frozenset({"", "1.0.0", "0.0.1"})


class FamilyText(NamedTuple):
    """A snapshot of one family, ready to render (see UsageMetrics.snapshot)."""

    kind: str  # counter | gauge | histogram
    name: str  # sample name; counters end in _total
    help: str
    unit: str  # OpenMetrics unit ("" = none); the family name ends with it
    heads: Sequence[str]  # counters/gauges: 'name{labels} '; histograms: 'a="x",b="y"'
    values: Sequence[Any]  # counters/gauges: numbers; histograms: (bucket counts, sum) pairs
    exact: bool = False  # values are Decimal
    les: Sequence[str] = ()  # histograms: le label values, ending with +Inf


def content_type(openmetrics: bool) -> str:
    """The Content-Type header of a `render(openmetrics)` body."""
    return CONTENT_TYPE_OPENMETRICS if openmetrics else CONTENT_TYPE_TEXT


def negotiate(accept_header: str | None) -> bool:
    """True when the Accept header prefers OpenMetrics (as Prometheus >= 2.5 sends it).

    OpenMetrics is chosen when an `application/openmetrics-text` range (version 1.0.0, 0.0.1 or
    none) has q > 0 and at least the q of `text/plain`; anything else gets the classic format.
    """
    if not accept_header:
        return False
    best_om = best_text = 0.0
    for part in accept_header.split(","):
        fields = part.split(";")
        media = fields[0].strip().lower()
        params: dict[str, str] = {}
        for field in fields[1:]:
            key, sep, value = field.partition("=")
            if sep:
                params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 0.0
        if media == "application/openmetrics-text" and params.get("version", "") in _OM_VERSIONS:
            best_om = max(best_om, q)
        elif media == "text/plain":
            best_text = max(best_text, q)
    return best_om > 0 and best_om >= best_text


def _decimal_text(value: Decimal) -> str:
    return repr(float(value))


def _escape_help(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if openmetrics else text


def _render_family(family: FamilyText, openmetrics: bool, out: list[str]) -> None:
    kind, name = family.kind, family.name
    meta_name = name[:-6] if openmetrics and kind == "counter" and name.endswith("_total") else name
    out.append(f"# HELP {meta_name} {_escape_help(family.help, openmetrics)}\n"
               f"# TYPE {meta_name} {kind}\n")
    if openmetrics and family.unit:
        out.append(f"# UNIT {meta_name} {family.unit}\n")
    if kind != "histogram":
        conv = _decimal_text if family.exact else str
        values = family.values
        if values:
            out.append("\n".join(map(add, family.heads, map(conv, values))))
            out.append("\n")
        return
    les = family.les
    lines: list[str] = []
    for inner, (counts, total) in zip(family.heads, family.values):
        labels = f"{{{inner}}}" if inner else ""
        bucket = f'{name}_bucket{{{inner}{"," if inner else ""}le="'
        cumulative = 0
        for le, count in zip(les, counts):
            cumulative += count
            lines.append(f'{bucket}{le}"}} {cumulative}\n')
        lines.append(f"{name}_count{labels} {cumulative}\n{name}_sum{labels} {total!r}\n")
    out.append("".join(lines))


def render(families: Iterable[FamilyText], openmetrics: bool) -> bytes:
    """The exposition body of `families`, in OpenMetrics 1.0.0 or the classic text format."""
    out: list[str] = []
    for family in families:
        _render_family(family, openmetrics, out)
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out).encode("utf-8", "replace")
