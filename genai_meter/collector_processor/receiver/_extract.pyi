"""Types of the optional C accelerator (_extract.c)."""

from collections.abc import Callable
from typing import Any

from genai_meter.records import SpanRecord

class Scanner:
    def __init__(self, markers: frozenset[str], needles: tuple[bytes, ...], record_type: type[SpanRecord],
                 fields: tuple[str, ...], slow: Callable[[bytes], tuple[str, Any] | None]) -> None: ...
    def scan(self, data: bytes, oldest: int, newest: int
             ) -> tuple[int, int, tuple[int, int, int, int], list[SpanRecord]] | None: ...
