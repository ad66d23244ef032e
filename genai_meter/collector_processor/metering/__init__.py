"""The one metering pipeline, shared by the in-process processor and the OTLP receiver."""

from genai_meter.collector_processor.metering.meter import Meter, Recorder
from genai_meter.collector_processor.metering.pipeline import build_meter

__all__ = ["Meter", "Recorder", "build_meter"]
