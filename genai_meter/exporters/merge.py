"""Snapshots of several stores as one exposition: how `serve --workers N` shows one set of series."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genai_meter.exporters.exposition import FamilyText, render
from genai_meter.exporters.families import FamilyData
from genai_meter.exporters.series import label_pairs


def merge_families(sources: Sequence[Sequence[FamilyData]]) -> list[FamilyData]:
    """Sum `UsageMetrics.families()` snapshots series by series: counters and histograms add,
    gauges take the maximum. Family order follows the first source that has each family."""
    order: list[str] = []
    protos: dict[str, Any] = {}
    values: dict[str, dict[tuple[str, ...], Any]] = {}
    for families in sources:
        for fam in families:
            series = values.get(fam.name)
            if series is None:
                order.append(fam.name)
                protos[fam.name] = fam
                series = values[fam.name] = {}
            kind = fam.kind
            for key, value in zip(fam.keys, fam.values):
                old = series.get(key)
                if old is None:
                    series[key] = (list(value[0]), value[1]) if kind == "histogram" else value
                elif kind == "histogram":
                    counts, total = old
                    series[key] = ([a + b for a, b in zip(counts, value[0])], total + value[1])
                elif kind == "gauge":
                    series[key] = max(old, value)
                else:
                    series[key] = old + value
    out = []
    for name in order:
        proto = protos[name]
        series = values[name]
        out.append(FamilyData(proto.kind, proto.name, proto.help, proto.unit, proto.labelnames,
                              list(series), list(series.values()), exact=proto.exact, bounds=proto.bounds))
    return out


def render_families(families: Sequence[FamilyData], openmetrics: bool) -> bytes:
    """Exposition text of `FamilyData` snapshots (the same text `UsageMetrics.render` writes)."""
    texts = []
    for fam in families:
        if fam.kind == "histogram":
            heads = [label_pairs(fam.labelnames, key) for key in fam.keys]
            les = tuple(repr(float(b)) for b in fam.bounds) + ("+Inf",)
            texts.append(FamilyText("histogram", fam.name, fam.help, fam.unit, heads, fam.values, les=les))
        else:
            heads = []
            for key in fam.keys:
                pairs = label_pairs(fam.labelnames, key)
                heads.append(f"{fam.name}{{{pairs}}} " if pairs else f"{fam.name} ")
            texts.append(FamilyText(fam.kind, fam.name, fam.help, fam.unit, heads, fam.values, exact=fam.exact))
    return render(texts, openmetrics)
