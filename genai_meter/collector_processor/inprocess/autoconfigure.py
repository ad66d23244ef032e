"""Zero-code set-up: `opentelemetry-instrument python app.py` adds the CostSpanProcessor.

Entry points (pyproject.toml): the `opentelemetry_configurator` named `genai_meter` configures the
SDK from the usual OTEL_* variables (like the SDK's own configurator) and adds a CostSpanProcessor
to the TracerProvider, with the configured sampler (OTEL_TRACES_SAMPLER) wrapped in
`MeteringSampler` so that sampled-out LLM calls are still counted. The `opentelemetry_distro`
named `genai_meter` only sets exporter defaults.

Environment:
  GENAI_METER_CONFIG           config file (optional)
  GENAI_METER_METRICS_LISTEN   HOST:PORT to serve /metrics from the app (default 127.0.0.1:9464;
                               "off" to not serve, e.g. when pushing over OTLP)
  GENAI_METER_OTLP_METRICS     "true": also push the metrics over OTLP through the app's
                               MeterProvider (OTEL_METRICS_EXPORTER), one series set per process
  GENAI_METER_RECORD_ALL       "true": record every sampled-out span, not only those with GenAI
                               attributes at start
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

from opentelemetry import metrics
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.trace import sampling

from genai_meter.collector_processor.inprocess.processor import CostSpanProcessor
from genai_meter.collector_processor.inprocess.sampler import MeteringSampler
from genai_meter.collector_processor.metering import Recorder
from genai_meter.config import load_config
from genai_meter.exporters.otel_metrics import OTelMetricsRecorder

log = logging.getLogger("genai_meter")

METRICS_LISTEN_ENV = "GENAI_METER_METRICS_LISTEN"
OTLP_METRICS_ENV = "GENAI_METER_OTLP_METRICS"
RECORD_ALL_ENV = "GENAI_METER_RECORD_ALL"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def build_processor() -> CostSpanProcessor:
    """A CostSpanProcessor configured from the environment (see the module docstring)."""
    config = load_config()
    recorders: list[Recorder] = []
    if _flag(OTLP_METRICS_ENV):
        recorders.append(OTelMetricsRecorder(config, metrics.get_meter_provider()))
    processor = CostSpanProcessor(config, recorders=recorders)
    listen = os.environ.get(METRICS_LISTEN_ENV, config.server.metrics_listen).strip()
    if listen.lower() not in {"", "off", "none"}:
        processor.serve_metrics(listen)
    return processor


class GenaiMeterConfigurator(_OTelSDKConfigurator):
    """The SDK's configurator, plus a CostSpanProcessor on the TracerProvider."""

    def _configure(self, **kwargs: Any) -> None:
        if _flag(OTLP_METRICS_ENV):
            # Each worker process pushes its own series: tell them apart, as Prometheus would by target.
            attributes = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
            if "service.instance.id" not in attributes:
                extra = f"service.instance.id={uuid.uuid4()}"
                os.environ["OTEL_RESOURCE_ATTRIBUTES"] = f"{attributes},{extra}" if attributes else extra
        base_sampler = kwargs.pop("sampler", None) or sampling._get_from_env_or_default()
        processors = list(kwargs.pop("span_processors", None) or ())
        processors.append(build_processor())
        super()._configure(sampler=MeteringSampler(base_sampler, all_spans=_flag(RECORD_ALL_ENV)),
                           span_processors=processors, **kwargs)


class GenaiMeterDistro(BaseDistro):
    """Defaults for `opentelemetry-instrument`: OTLP traces stay the exporter the user chose."""

    def _configure(self, **kwargs: Any) -> None:
        os.environ.setdefault("OTEL_TRACES_EXPORTER", "otlp")
        os.environ.setdefault("OTEL_METRICS_EXPORTER", "otlp" if _flag(OTLP_METRICS_ENV) else "none")
        os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
