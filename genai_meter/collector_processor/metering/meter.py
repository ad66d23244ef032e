"""The pipeline shared by the in-process processor and the OTLP receiver.

span (SpanRecord) -> conventions: LLMCall or a skip reason -> pricing: Cost or unpriced -> recorders.

One call, two LLM spans: see `metering.nested`. Probability-sampled spans get `sample_weight` 1/p
when `sampling.weight_by_adjusted_count` is on, on both paths alike.

`Meter.process` is the one path every span takes; it never raises (a failure is counted in
`genai_meter_processing_errors_total` and logged once per kind) and takes no locks of its own
(recorders are thread-safe).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from genai_meter import contract
from genai_meter.config import Config
from genai_meter.conventions import Conventions
from genai_meter.pricing import PriceBook
from genai_meter.collector_processor.metering.nested import NestedCalls
from genai_meter.collector_processor.metering.weights import adjusted_count
from genai_meter.records import Cost, LLMCall, SpanRecord

log = logging.getLogger("genai_meter")


class Recorder(Protocol):
    """A metric sink. Implementations are thread-safe and never block on I/O."""

    def record_call(self, call: LLMCall, cost: Cost | None) -> None:
        """Count one inference call; `cost` None means no price matched (unpriced)."""

    def record_skip(self, reason: str) -> None:
        """Count one span that was not an inference call."""

    def record_self(self, name: str, amount: float = 1, **labels: str) -> None:
        """Add to a genai_meter_* self-metric (names in genai_meter.contract)."""


class Meter:
    """Turns finished spans into metric updates on every recorder."""

    def __init__(self, config: Config, recorders: Sequence[Recorder], *,
                 conventions: Conventions | None = None, prices: PriceBook | None = None) -> None:
        self.config = config
        self.recorders = tuple(recorders)
        self.conventions = conventions or Conventions(config)
        self.prices = prices or PriceBook.from_config(config)
        self.nested = NestedCalls()
        # probability-sampled spans count 1/p times when the config asks for estimates (docs/accuracy.md)
        self.weight_sampled = config.sampling.weight_by_adjusted_count
        for recorder in self.recorders:  # every figure traces back to the prices that made it
            set_info = getattr(recorder, "set_pricing_info", None)  # optional: recorders with an info metric
            if set_info is not None:
                set_info(self.prices.catalog_version, self.prices.overrides_version)
        self._logged_errors: set[str] = set()

    def process(self, span: SpanRecord) -> tuple[LLMCall, Cost | None] | None:
        """Meter one span; returns the call counted and its cost (None: unpriced), or None. Never raises."""
        try:
            outcome = self.conventions.classify(span)
            if not isinstance(outcome, str):
                if self.nested.check_and_note(span):
                    outcome = contract.SKIP_NESTED
                elif self.weight_sampled and span.trace_state:
                    weight = adjusted_count(span.trace_state)
                    if weight is not None:
                        outcome.sample_weight = weight
            if isinstance(outcome, str):
                for recorder in self.recorders:
                    recorder.record_skip(outcome)
                return None
            cost = self.prices.cost(outcome)
            for recorder in self.recorders:
                recorder.record_call(outcome, cost)
            return outcome, cost
        except Exception as exc:  # never into the app, never lose the other spans
            self._count_error(exc)
            return None

    def _count_error(self, exc: Exception) -> None:
        kind = type(exc).__name__
        for recorder in self.recorders:
            try:
                recorder.record_self(contract.SELF_PROCESSING_ERRORS)
            except Exception:  # pragma: no cover - a broken recorder must not break the others
                pass
        if kind not in self._logged_errors:
            self._logged_errors.add(kind)
            log.exception("genai-meter: a span could not be metered (%s); further %s errors are only counted",
                          kind, kind)
