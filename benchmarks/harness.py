"""Small timing helpers shared by the benchmarks."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


def best_of(run: Callable[[], object], repeats: int = 7) -> float:
    """The fastest of `repeats` runs of `run`, in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def report(title: str, rows: list[tuple[str, str, str]]) -> None:
    """Print a titled table of (measure, figure, target/ratio) rows."""
    print(f"\n== {title}")
    width = max(len(row[0]) for row in rows)
    for name, figure, note in rows:
        print(f"  {name:<{width}}  {figure:>16}  {note}")
