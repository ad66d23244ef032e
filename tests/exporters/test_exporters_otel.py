"""OTelMetricsRecorder: instrument names survive the OTLP->Prometheus translation unchanged."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families as parse_classic

from genai_meter import contract
from genai_meter.config import Config
from genai_meter.exporters.otel_metrics import OTelMetricsRecorder, instrument_specs
from genai_meter.records import Cost, LLMCall, TokenCounts

END_NS = 1_795_449_600 * 10**9  # 2026-11-23T12:00:00Z
CONFIG = Config(
    dimensions={"customer": {"attributes": ["customer.id"], "max_values": 2}},
    budgets=[{"name": "acme", "match": {"customer": "acme"}, "period": "day", "limit_usd": "50"}],
)

# --- The translation rules, ported from prometheus/otlptranslator (metric_namer.go, unit_namer.go),
# which Prometheus' OTLP receiver and the Collector's prometheus/prometheusremotewrite exporters use.
_UNIT_MAP = {"d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
             "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes",
             "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes",
             "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes", "m": "meters", "V": "volts",
             "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius", "Hz": "hertz",
             "1": "", "%": "percent"}
_PER_UNIT_MAP = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}


def _unit_suffixes(unit: str) -> tuple[str, str]:
    parts = unit.split("/", 1)
    main = per = ""
    first = parts[0].strip()
    if first and not set(first) & set("{}"):
        main = _UNIT_MAP.get(first, first)
    if len(parts) > 1 and parts[1]:
        second = parts[1].strip()
        if second and not set(second) & set("{}"):
            per = _PER_UNIT_MAP.get(second, second)
        if per:
            per = "per_" + per
    return main, per


def _clean(unit: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9:]", "_", unit)).removeprefix("_")


def translate_escaping(name: str, unit: str, kind: str) -> str:
    """UnderscoreEscapingWithSuffixes (the default) of otlptranslator.normalizeName."""
    tokens = [t for t in re.split(r"[^a-zA-Z0-9:]", name) if t]
    main, per = (_clean(u) for u in _unit_suffixes(unit))
    if main in tokens:
        main = ""
    if per == "per_":
        per = ""
    else:
        per = per.removesuffix("_")
        if per in tokens:
            per = ""
    if per:
        main = main.removesuffix("_")
    tokens += [t for t in (main, per) if t]
    if kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind == "gauge":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    out = "_".join(tokens)
    return "_" + out if out[:1].isdigit() else out


def translate_utf8(name: str, unit: str, kind: str) -> str:
    """NoUTF8EscapingWithSuffixes of otlptranslator.buildMetricName."""
    def trim(value: str, suffix: str) -> str:
        return value[: -(len(suffix) + 1)] if value.endswith(suffix) and len(value) > len(suffix) + 1 else value

    suffixes: list[str] = []
    if unit == "1" and kind == "gauge":
        name = trim(name, "ratio")
        suffixes.insert(0, "_ratio")
    if kind == "counter":
        name = trim(name, "total")
        suffixes.insert(0, "_total")
    main, per = _unit_suffixes(unit)
    if per:
        name = trim(name, per)
        suffixes.insert(0, "_" + per)
    if main and not name.endswith(main):
        name += "_" + main
    return name + "".join(suffixes)


@pytest.mark.parametrize(("name", "unit", "kind", "expected"), [
    # examples documented in otlptranslator
    ("http.server.request.duration", "s", "histogram", "http_server_request_duration_seconds"),
    ("requests.count", "1", "counter", "requests_count_total"),
    ("memory.usage", "By", "gauge", "memory_usage_bytes"),
    ("network.io", "By/s", "gauge", "network_io_bytes_per_second"),
    ("cpu.utilization", "1", "gauge", "cpu_utilization_ratio"),
    ("gen_ai.client.token.usage", "{token}", "histogram", "gen_ai_client_token_usage"),
    # why the cost counter does not use unit "USD": the case is kept
    ("llm.cost", "USD", "counter", "llm_cost_USD_total"),
])
def test_translation_port_matches_documented_examples(name: str, unit: str, kind: str, expected: str) -> None:
    assert translate_escaping(name, unit, kind) == expected


def python_reader_name(name: str, unit: str) -> str:
    """What the Python SDK's PrometheusMetricReader names a family (then prometheus_client's rules)."""
    from opentelemetry.exporter.prometheus._mapping import map_unit, sanitize_full_name

    family = sanitize_full_name(name).removesuffix("_total")
    mapped = map_unit(unit)
    return family if not mapped or family.endswith("_" + mapped) else f"{family}_{mapped}"


@pytest.mark.parametrize("prefix", ["llm", "acme_ai"])
def test_every_instrument_translates_to_its_contract_name(prefix: str) -> None:
    config = Config(metric_prefix=prefix, budgets=CONFIG.budgets, dimensions=CONFIG.dimensions)
    specs = instrument_specs(config)
    n = contract.MetricNames(prefix)
    expected = {n.requests, n.tokens, n.cost, n.budget_spend, n.budget_tokens, n.budget_limit, n.duration,
                n.ttft, n.unpriced, n.request_errors, n.unmetered, n.price, n.tool_calls, n.units, n.partially_priced,
                n.estimated, contract.SELF_SPANS_RECEIVED, contract.SELF_SPANS_COUNTED,
                contract.SELF_SPANS_SKIPPED, contract.SELF_SPANS_DUPLICATE, contract.SELF_SPANS_REJECTED,
                contract.SELF_SPANS_SAMPLED, contract.SELF_LABEL_OVERFLOW, contract.SELF_SERIES_OVERFLOW,
                contract.SELF_SPANS_FORWARDED, contract.SELF_SPANS_FORWARD_DROPPED, contract.SELF_PROCESSING_ERRORS,
                contract.SELF_BUILD_INFO, contract.SELF_PRICING_INFO, contract.SELF_PRICING_CATALOG_TIME}
    assert {s.name for s in specs} == expected
    for spec in specs:
        assert translate_escaping(spec.name, spec.unit, spec.kind) == spec.name
        assert translate_utf8(spec.name, spec.unit, spec.kind) == spec.name
        assert spec.name == spec.name.lower() and re.fullmatch(r"[a-z][a-z0-9_]*", spec.name)
        if spec.kind == "counter":
            assert spec.name.endswith("_total")
        if spec.kind == "histogram":
            assert spec.unit == "s" and spec.name.endswith("_seconds")
        if spec.kind != "histogram":
            assert spec.unit == "" or re.fullmatch(r"\{[A-Za-z]+\}", spec.unit)  # annotations only
    pytest.importorskip("opentelemetry.exporter.prometheus",
                        reason="opentelemetry-exporter-prometheus not installed")
    for spec in specs:
        family = python_reader_name(spec.name, spec.unit)
        sample = family + "_total" if spec.kind == "counter" else family
        assert sample == spec.name


def make_call(customer: str, **kw: object) -> LLMCall:
    fields: dict = dict(service="checkout", environment="prod", provider="openai", model="gpt-4o",
                        operation="chat", status="ok", error_type="", duration_s=2.0, ttft_s=0.3,
                        tokens=TokenCounts(input=1000, output=200), end_ns=END_NS,
                        dimensions={"customer": customer})
    fields.update(kw)
    return LLMCall(**fields)


COST = Cost(by_type={"input": Decimal("0.0025"), "output": Decimal("0.002")}, price_source="overrides",
            price_version="t", price_entry="e", unit_prices={"input": Decimal("2.5"), "output": Decimal("10")})


def exported_points(reader: InMemoryMetricReader) -> dict[str, list]:
    out: dict[str, list] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


class Clock:
    def __init__(self, seconds: float) -> None:
        self.now = seconds

    def __call__(self) -> float:
        return self.now


def test_recorder_exports_store_values_with_the_same_cardinality_rules() -> None:
    reader = InMemoryMetricReader()
    clock = Clock(END_NS / 1e9)
    recorder = OTelMetricsRecorder(CONFIG, MeterProvider(metric_readers=[reader]), clock=clock,
                                   catalog_version="0.2.3")
    for customer in ["acme", "b", "c", "d", "acme"]:
        recorder.record_call(make_call(customer), COST)
    recorder.record_call(make_call("acme", model="mystery"), None)
    recorder.record_skip("not_llm")
    recorder.record_self(contract.SELF_SPANS_RECEIVED, 7)
    points = exported_points(reader)

    requests = {p.attributes["customer"]: p.value for p in points["llm_requests_total"]
                if p.attributes["model"] == "gpt-4o"}
    assert requests == {"acme": 2, "b": 1, contract.OVERFLOW: 2}  # max_values 2, as on /metrics
    cost = sum(p.value for p in points["llm_cost_usd_total"])
    assert cost == pytest.approx(0.0045 * 5)
    assert {p.attributes["budget"]: p.value for p in points["llm_budget_spend_usd_total"]} == {"acme": 0.009}  # the unpriced call adds 0
    assert [p.value for p in points["llm_unpriced_requests_total"]] == [1]
    assert {p.attributes["token_type"]: p.value for p in points["llm_price_usd_per_million_tokens"]} == {
        "input": 2.5, "output": 10.0}
    durations = {p.attributes["model"]: p.count for p in points["llm_request_duration_seconds"]}
    assert durations == {"gpt-4o": 5, "mystery": 1}
    duration = points["llm_request_duration_seconds"][0]
    assert tuple(duration.explicit_bounds) == contract.DURATION_BUCKETS
    assert "customer" not in duration.attributes
    assert [p.value for p in points[contract.SELF_SPANS_RECEIVED]] == [7]
    assert [p.attributes for p in points[contract.SELF_PRICING_INFO]] == [
        {"catalog_version": "0.2.3", "overrides_version": "none", "catalog_date": "unknown"}]
    # the store behind it is exact
    assert recorder.store.get_decimal("llm_budget_spend_usd_total", budget="acme",
                                      period="2026-11-23") == Decimal("0.009")

    # after the day rolls over (and the grace passes), the old budget period is no longer exported
    clock.now = END_NS / 1e9 + 86400
    periods = {p.attributes["period"]: p.value for p in exported_points(reader)["llm_budget_spend_usd_total"]}
    assert periods == {"2026-11-24": 0}


def test_python_prometheus_reader_exposes_the_contract_names() -> None:
    pytest.importorskip("opentelemetry.exporter.prometheus",
                        reason="opentelemetry-exporter-prometheus not installed")
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    recorder = OTelMetricsRecorder(CONFIG, provider, clock=lambda: END_NS / 1e9)
    recorder.record_call(make_call("acme"), COST)
    recorder.record_call(make_call("b", status="error", model="mystery"), None)
    body = generate_latest(registry).decode()
    scope_labels = {"otel_scope_name", "otel_scope_version", "otel_scope_schema_url"}
    exported = {}
    for family in parse_classic(body):
        for sample in family.samples:
            if sample.name.startswith(("llm_", "genai_meter_")):
                labels = frozenset((k, v) for k, v in sample.labels.items() if k not in scope_labels)
                exported[(sample.name, labels)] = sample.value
    assert exported == recorder.store.samples()  # same names, labels and values as /metrics
    provider.shutdown()
