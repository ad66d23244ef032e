"""Span processing, by job: `metering` (the one pipeline), `inprocess` (SDK SpanProcessor and
sampler), `receiver` (`genai-meter serve`: OTLP over HTTP and gRPC) and `forwarding` (spans on to a
trace store with cost attributes). The public face is re-exported here."""

from genai_meter.collector_processor.inprocess import CostSpanProcessor, MeteringSampler
from genai_meter.collector_processor.metering import Meter, Recorder

__all__ = ["CostSpanProcessor", "Meter", "MeteringSampler", "Recorder"]
