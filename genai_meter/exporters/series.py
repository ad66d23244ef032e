"""Series tables: the label sets of one metric family, with the per-metric series cap.

Each series gets an index at creation; its exposition text (metric name + rendered labels) is
built once then and kept, and its value lives in a plain list, so rendering is one `str.join`.
Series are never deleted (counters must not go backwards), so memory is bounded by the cap.

Series cap (`limits.max_series_per_metric`, docs/metrics.md): once a family holds that many label
sets, a new one is *folded*, and the update still lands somewhere, so totals stay exact:
1. into the same label set with every dimension label set to `__overflow__` (base labels such as
   model kept); such folded series may add at most a tenth of the cap more (at least 10);
2. when those are used up too (or the family has no dimensions), into a catch-all series whose
   labels are all `__overflow__` except the class label (token_type, cost_type, status, reason).
Every fold calls `on_fold` (counted in genai_meter_series_overflow_total{metric}). Gauges do not
fold (a folded price is meaningless): past the cap new gauge series are dropped, and counted.

Not thread-safe: the owner (UsageMetrics) calls it under its lock. Readers outside the lock take
a `snapshot()` under the lock; `heads` is append-only, so entries below the snapshot's length
stay valid after the lock is released.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Literal

from genai_meter.contract import OVERFLOW

Kind = Literal["counter", "gauge", "histogram"]
_EXACT_INT = 2**53  # ints below it are exact floats: int / 1e12 is then correctly rounded


def escape_label_value(value: str) -> str:
    """Escape a label value for the text formats: backslash, double quote, newline."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def label_pairs(names: Sequence[str], values: Sequence[str]) -> str:
    """`a="x",b="y"` (no braces), values escaped."""
    return ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values))


class SeriesTable:
    """Label sets of one family -> series index, with the series cap and folding."""

    kind: Kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str], *, max_series: int,
                 dimensions: Sequence[str] = (), keep: Sequence[str] = (), unit: str = "",
                 foldable: bool = True) -> None:
        self.name = name  # the sample name (counters end in _total)
        self.help = help_text
        self.unit = unit  # OpenMetrics UNIT; the family name ends with it
        self.labelnames = tuple(labelnames)
        self.max_series = max_series
        self.reserve = max(10, max_series // 10)  # folded (dimensions = __overflow__) series
        self.foldable = foldable
        self._dim_pos = frozenset(i for i, n in enumerate(self.labelnames) if n in dimensions)
        self._keep_pos = frozenset(i for i, n in enumerate(self.labelnames) if n in keep)
        self.index: dict[tuple[str, ...], int] = {}
        self.heads: list[str] = []  # per series: exposition prefix, built once
        self.labelsets: list[tuple[str, ...]] = []  # per series: its label values
        self._regular = 0
        self._folded = 0
        self.on_fold: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self.heads)

    def slot(self, key: tuple[str, ...]) -> int | None:
        """The index of `key`'s series (created, or folded, as needed); None: dropped (gauges)."""
        idx = self.index.get(key)
        if idx is not None:
            return idx
        if self._regular < self.max_series:
            self._regular += 1
            return self._create(key)
        if self.on_fold is not None:
            self.on_fold()
        if not self.foldable:
            return None
        if self._dim_pos:
            dim_pos = self._dim_pos
            folded = tuple(OVERFLOW if i in dim_pos else v for i, v in enumerate(key))
            idx = self.index.get(folded)
            if idx is not None:
                return idx
            if self._folded < self.reserve:
                self._folded += 1
                return self._create(folded)
        keep = self._keep_pos
        catch_all = tuple(v if i in keep else OVERFLOW for i, v in enumerate(key))
        idx = self.index.get(catch_all)
        return idx if idx is not None else self._create(catch_all)

    def _create(self, key: tuple[str, ...]) -> int:
        idx = len(self.heads)
        self.index[key] = idx
        self.labelsets.append(key)
        self.heads.append(self._head(key))
        self._new_value()
        return idx

    def _head(self, key: tuple[str, ...]) -> str:
        pairs = label_pairs(self.labelnames, key)
        return f"{self.name}{{{pairs}}} " if pairs else f"{self.name} "

    def _new_value(self) -> None:
        raise NotImplementedError

    def keys(self) -> list[tuple[str, ...]]:
        """Label tuples in series-index order (call under the owner's lock)."""
        return self.labelsets[:]


class CounterTable(SeriesTable):
    """A counter (or, with kind="gauge", a gauge); values are int, float or Decimal."""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str], *, max_series: int,
                 exact: bool = False, pico: bool = False, kind: Kind = "counter", **kwargs: Any) -> None:
        super().__init__(name, help_text, labelnames, max_series=max_series,
                         foldable=kind == "counter", **kwargs)
        self.kind = kind
        self.exact = exact  # values are Decimal (money); rendered as floats
        # money kept in 10^-12 USD (ints; Decimal when sample-weighted): `values` hold that unit,
        # `snapshot` hands out Decimal USD like any exact table
        self.pico = pico
        self.values: list[Any] = []
        self._zero: int | Decimal = 0 if pico or not exact else Decimal(0)

    def _new_value(self) -> None:
        self.values.append(self._zero)

    def add(self, key: tuple[str, ...], amount: float | int | Decimal) -> None:
        """Add to `key`'s series (created at zero first)."""
        idx = self.slot(key)
        if idx is not None:
            self.values[idx] += amount

    def touch(self, key: tuple[str, ...]) -> None:
        """Create `key`'s series at zero, so it is exported before its first increment."""
        self.slot(key)

    def set(self, key: tuple[str, ...], value: float | int | Decimal) -> None:
        """Set a gauge."""
        idx = self.slot(key)
        if idx is not None:
            self.values[idx] = value

    def float_values(self) -> list[Any]:
        """A copy of the values for the text exposition: a `pico` table's as float USD (each the
        float nearest the exact amount, as `float(Decimal)` gives), others as they are."""
        if not self.pico:
            return self.values[:]
        return [v / 1e12 if type(v) is int and -_EXACT_INT < v < _EXACT_INT else float(Decimal(v).scaleb(-12))
                for v in self.values]

    def snapshot(self) -> tuple[list[str], list[Any]]:
        """(heads, a copy of the values); zip them (call under the owner's lock). A `pico` table's
        values come out as exact Decimal USD."""
        if self.pico:
            return self.heads, [Decimal(v).scaleb(-12) for v in self.values]
        return self.heads, self.values[:]


class HistogramTable(SeriesTable):
    """A histogram with fixed upper bounds; counts are per bucket (not cumulative) plus +Inf."""

    kind: Kind = "histogram"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str], *, max_series: int,
                 buckets: Sequence[float], **kwargs: Any) -> None:
        super().__init__(name, help_text, labelnames, max_series=max_series, **kwargs)
        self.bounds = tuple(float(b) for b in buckets)
        self.les = tuple(repr(b) for b in self.bounds) + ("+Inf",)
        self.counts: list[list[int]] = []
        self.sums: list[float] = []

    def _head(self, key: tuple[str, ...]) -> str:
        return label_pairs(self.labelnames, key)

    def _new_value(self) -> None:
        self.counts.append([0] * (len(self.bounds) + 1))
        self.sums.append(0.0)

    def observe(self, key: tuple[str, ...], value: float) -> int | None:
        """Count one observation (non-negative, finite; the caller checks); returns its series."""
        idx = self.slot(key)
        if idx is not None:
            self.counts[idx][bisect_left(self.bounds, value)] += 1
            self.sums[idx] += value
        return idx

    def observe_at(self, idx: int, value: float) -> None:
        """Count one observation in series `idx` (from `slot`)."""
        self.counts[idx][bisect_left(self.bounds, value)] += 1
        self.sums[idx] += value

    def snapshot(self) -> tuple[list[str], list[list[int]], list[float]]:
        """(label strings, copies of the bucket counts, the sums) (call under the owner's lock)."""
        return self.heads, [c[:] for c in self.counts], self.sums[:]
