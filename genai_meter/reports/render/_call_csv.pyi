"""Types of the optional C accelerator (_call_csv.c): call_csv.format_rows_pure's signature."""

from collections.abc import Callable, Mapping
from typing import Any

NO_USAGE: str
CACHE_UNKNOWN: str

def format_rows(rows: list[tuple[Any, ...]], labels: dict[int, tuple[str, str, str]], prices: dict[int, str],
                units: Mapping[tuple[int, bytes, bytes], tuple[str, int, str, bool]],
                label_miss: Callable[[int], tuple[str, str, str]], price_miss: Callable[[int], str],
                field: Callable[[str], str]) -> bytes: ...

def label_rows(rows: list[tuple[Any, ...]], dimensions: list[str],
               field: Callable[[str], str]) -> list[tuple[str, str, str] | None]: ...
