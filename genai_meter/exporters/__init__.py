"""Metric sinks: the UsageMetrics store with fast Prometheus exposition, and an OTel-metrics recorder.

- `UsageMetrics` (exporters.store): the `Recorder` behind `/metrics`; `render(openmetrics)`,
  `negotiate(accept)` and `content_type(openmetrics)` serve it; `as_collector()` bridges it into a
  prometheus_client registry.
- `OTelMetricsRecorder` (exporters.otel_metrics): the same metrics through an OTel MeterProvider,
  named so that the OTLP-to-Prometheus translation yields the contract's names.
"""

from genai_meter.exporters.exposition import content_type, negotiate
from genai_meter.exporters.store import UsageMetrics

__all__ = ["UsageMetrics", "content_type", "negotiate"]
