"""Types of the optional C accelerator (_tally.c): `Tally.run_pure` in C."""

from collections.abc import Sequence

from genai_meter.collector_processor.metering.tally import Tally
from genai_meter.records import SpanRecord

def run(tally: Tally, spans: Sequence[SpanRecord], start: int, /) -> int: ...
