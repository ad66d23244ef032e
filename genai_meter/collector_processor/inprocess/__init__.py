"""In-process metering: the SDK SpanProcessor, the sampler wrapper, the `opentelemetry-instrument` hook."""

from genai_meter.collector_processor.inprocess.processor import CostSpanProcessor
from genai_meter.collector_processor.inprocess.sampler import MeteringSampler

__all__ = ["CostSpanProcessor", "MeteringSampler"]
