"""Assembling the pipeline: the one place a `Meter` is built from a config, on both paths."""

from __future__ import annotations

from collections.abc import Sequence

from genai_meter.collector_processor.metering.meter import Meter, Recorder
from genai_meter.config import Config
from genai_meter.conventions import Conventions
from genai_meter.pricing import PriceBook


def build_meter(config: Config, recorders: Sequence[Recorder], *, conventions: Conventions | None = None,
                prices: PriceBook | None = None) -> Meter:
    """The `Meter` for `config`, feeding `recorders` (the first is the scraped `UsageMetrics`)."""
    return Meter(config, recorders, conventions=conventions or Conventions(config),
                 prices=prices or PriceBook.from_config(config))
