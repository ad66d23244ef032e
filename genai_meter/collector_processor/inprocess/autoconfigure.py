"""Zero-code set-up, opt-in: `GENAI_METER_INPROCESS=true opentelemetry-instrument python app.py`
adds the CostSpanProcessor.

Entry points (pyproject.toml): the `opentelemetry_configurator` and the `opentelemetry_distro`
named `genai_meter`. Installing the package changes nothing by itself: without
GENAI_METER_INPROCESS=true both behave as if genai-meter were not installed (the SDK's own set-up
when opentelemetry-distro is installed, else nothing, and one warning line saying that the
missing package is opentelemetry-distro, where the bare tool says nothing). Opted in, the configurator configures the
SDK from the usual OTEL_* variables and adds a CostSpanProcessor to the TracerProvider, with the
configured sampler (OTEL_TRACES_SAMPLER) wrapped in `MeteringSampler` so that sampled-out LLM
calls are still counted; the distro sets exporter defaults.

Metering never takes the app's tracing down: a /metrics port already in use is logged and the
processor goes on counting (for OTLP metrics, or a later scrape of nothing); a config that cannot
be loaded is logged and tracing is configured without metering.

Environment:
  GENAI_METER_INPROCESS        "true": meter in this process (nothing happens without it)
  GENAI_METER_CONFIG           config file (optional)
  GENAI_METER_METRICS_LISTEN   HOST:PORT to serve /metrics from the app (default 127.0.0.1:9464;
                               "off" to not serve, e.g. when pushing over OTLP)
  GENAI_METER_OTLP_METRICS     "true": also push the metrics over OTLP through the app's
                               MeterProvider (OTEL_METRICS_EXPORTER), one series set per process
  GENAI_METER_RECORD_ALL       "true": record every sampled-out span, not only those with GenAI
                               attributes at start
"""

from __future__ import annotations

import importlib.util
import logging
import os
import uuid
from typing import Any

from opentelemetry import metrics
from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]  # untyped package
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.trace import sampling

from genai_meter.collector_processor.inprocess.processor import CostSpanProcessor
from genai_meter.collector_processor.inprocess.sampler import MeteringSampler
from genai_meter.collector_processor.metering import Recorder
from genai_meter.config import load_config
from genai_meter.exporters.otel_metrics import OTelMetricsRecorder

log = logging.getLogger("genai_meter")

INPROCESS_ENV = "GENAI_METER_INPROCESS"
METRICS_LISTEN_ENV = "GENAI_METER_METRICS_LISTEN"
OTLP_METRICS_ENV = "GENAI_METER_OTLP_METRICS"
RECORD_ALL_ENV = "GENAI_METER_RECORD_ALL"
NOTHING_SET_UP = ("genai-meter: opentelemetry-instrument set up no tracing: opentelemetry-distro is not installed "
                  "(pip install opentelemetry-distro), and in-process metering is off "
                  f"({INPROCESS_ENV}=true turns it on, and with it the SDK's exporters)")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def opted_in() -> bool:
    """GENAI_METER_INPROCESS is true: metering in this process was asked for."""
    return _flag(INPROCESS_ENV)


def _sdk_distro_installed() -> bool:
    """opentelemetry-distro is installed: without genai-meter, its configurator would set up the SDK."""
    try:
        return importlib.util.find_spec("opentelemetry.distro") is not None
    except (ImportError, ValueError):
        return False


def build_processor() -> CostSpanProcessor:
    """A CostSpanProcessor configured from the environment (see the module docstring). Raises
    ConfigError for a bad config; a /metrics address in use is only logged."""
    config = load_config()
    recorders: list[Recorder] = []
    if _flag(OTLP_METRICS_ENV):
        recorders.append(OTelMetricsRecorder(config, metrics.get_meter_provider()))
    processor = CostSpanProcessor(config, recorders=recorders)
    listen = os.environ.get(METRICS_LISTEN_ENV, config.server.metrics_listen).strip()
    if listen.lower() not in {"", "off", "none"}:
        try:
            processor.serve_metrics(listen)
        except (OSError, ValueError) as exc:
            log.warning("genai-meter: cannot serve /metrics on %s (%s); counting goes on without it. "
                        "Set %s to a free HOST:PORT, or to off", listen, exc, METRICS_LISTEN_ENV)
    return processor


class GenaiMeterConfigurator(_OTelSDKConfigurator):
    """The SDK's configurator, plus a CostSpanProcessor on the TracerProvider."""

    def _configure(self, **kwargs: Any) -> None:
        if not opted_in():
            if _sdk_distro_installed():  # stand in for opentelemetry-distro's configurator, which we shadow
                super()._configure(**kwargs)  # type: ignore[no-untyped-call]
            else:  # what opentelemetry-instrument does without a distro: nothing, silently; say so
                log.warning(NOTHING_SET_UP)
            return
        try:
            processor = build_processor()
        except Exception:  # a bad config must not take the app's tracing down
            log.exception("genai-meter: in-process metering is off: it could not be set up")
            super()._configure(**kwargs)  # type: ignore[no-untyped-call]
            return
        if _flag(OTLP_METRICS_ENV):
            # Each worker process pushes its own series: tell them apart, as Prometheus would by target.
            attributes = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
            if "service.instance.id" not in attributes:
                extra = f"service.instance.id={uuid.uuid4()}"
                os.environ["OTEL_RESOURCE_ATTRIBUTES"] = f"{attributes},{extra}" if attributes else extra
        base_sampler = kwargs.pop("sampler", None) or sampling._get_from_env_or_default()
        processors = list(kwargs.pop("span_processors", None) or ())
        processors.append(processor)
        sampler = MeteringSampler(base_sampler, all_spans=_flag(RECORD_ALL_ENV))
        super()._configure(sampler=sampler, span_processors=processors, **kwargs)  # type: ignore[no-untyped-call]


class GenaiMeterDistro(BaseDistro):  # type: ignore[misc]  # BaseDistro is untyped
    """Defaults for `opentelemetry-instrument`: OTLP traces stay the exporter the user chose.
    Not opted in, it does what the distro it may shadow would do (opentelemetry-distro's, else none)."""

    def _configure(self, **kwargs: Any) -> None:
        if not opted_in():
            if _sdk_distro_installed():
                from opentelemetry.distro import OpenTelemetryDistro  # optional package, only when installed

                OpenTelemetryDistro()._configure(**kwargs)
            return
        os.environ.setdefault("OTEL_TRACES_EXPORTER", "otlp")
        os.environ.setdefault("OTEL_METRICS_EXPORTER", "otlp" if _flag(OTLP_METRICS_ENV) else "none")
        os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
