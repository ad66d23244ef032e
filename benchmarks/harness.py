"""Small timing helpers shared by the benchmarks."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence


def best_of(run: Callable[[], object], repeats: int = 7) -> float:
    """The fastest of `repeats` runs of `run`, in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def best_of_interleaved(runs: Sequence[Callable[[], object]], repeats: int = 11) -> list[float]:
    """The fastest run of each of `runs`, in seconds, taking turns (a, b, a, b, ...): on a shared
    machine whose load drifts, a figure and its reference then see the same conditions."""
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for i, run in enumerate(runs):
            gc.collect()
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def report(title: str, rows: list[tuple[str, str, str]]) -> None:
    """Print a titled table of (measure, figure, target/ratio) rows."""
    print(f"\n== {title}")
    width = max(len(row[0]) for row in rows)
    for name, figure, note in rows:
        print(f"  {name:<{width}}  {figure:>16}  {note}")
