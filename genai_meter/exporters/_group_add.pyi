"""Types of the optional C accelerator (_group_add.c): group_add.add_group_pure's signature."""

from collections.abc import Sequence
from typing import Any

def add_group(slots: Sequence[Any], calls: int, tokens: Sequence[int], costs: Sequence[int],
              duration_counts: Sequence[int], durations: Sequence[float], ttft_counts: Sequence[int],
              ttfts: Sequence[float], priced: bool, tables: Sequence[Any]) -> None: ...
