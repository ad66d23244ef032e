"""`FamilyData`: a plain snapshot of one metric family, what stores hand to every exposition path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class FamilyData:
    """A snapshot of one family with label tuples; `samples()` flattens it."""

    __slots__ = ("kind", "name", "help", "unit", "labelnames", "keys", "values", "exact", "bounds")

    def __init__(self, kind: str, name: str, help_text: str, unit: str, labelnames: tuple[str, ...],
                 keys: list[tuple[str, ...]], values: list[Any], *, exact: bool = False,
                 bounds: tuple[float, ...] = ()) -> None:
        self.kind = kind
        self.name = name
        self.help = help_text
        self.unit = unit
        self.labelnames = labelnames
        self.keys = keys
        self.values = values  # numbers; histograms: (non-cumulative bucket counts, sum)
        self.exact = exact
        self.bounds = bounds

    def series(self) -> Iterator[tuple[dict[str, str], Any]]:
        """(labels, value) per series."""
        names = self.labelnames
        for key, value in zip(self.keys, self.values):
            yield dict(zip(names, key)), value

    def samples(self) -> Iterator[tuple[str, dict[str, str], Any]]:
        """(sample name, labels, value) per exported sample (histograms: buckets, _count, _sum)."""
        if self.kind != "histogram":
            for labels, value in self.series():
                yield self.name, labels, value
            return
        les = [repr(b) for b in self.bounds] + ["+Inf"]
        for labels, (counts, total) in self.series():
            cumulative = 0
            for le, count in zip(les, counts):
                cumulative += count
                yield f"{self.name}_bucket", {**labels, "le": le}, cumulative
            yield f"{self.name}_count", labels, cumulative
            yield f"{self.name}_sum", labels, total
