"""Span processing: the in-process SpanProcessor, the shared pipeline, and the OTLP receiver."""

from genai_meter.collector_processor.meter import Meter, Recorder
from genai_meter.collector_processor.processor import CostSpanProcessor, MeteringSampler

__all__ = ["CostSpanProcessor", "Meter", "MeteringSampler", "Recorder"]
