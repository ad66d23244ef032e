"""What every dashboard shares: template variables, label filters, money, links, the envelope."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

import attr
from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard, DashboardLink, Template, Templating, Time, TimePicker

from genai_meter.config import Config
from genai_meter.contract import Contract, MetricNames
from genai_meter.dashboards.layout import Layout
from genai_meter.dashboards.panels import DATASOURCE, SCHEMA_VERSION, PromTarget, currency_unit
from genai_meter.promql.names import SERVICE_MODEL, SERVICE_MODEL_OPERATION, RuleNames
from genai_meter.promql.text import num

TAG = "genai-meter"
# (from, title): relative ranges up to now; `now/d` and `now/M` are today and this month so far (UTC).
TIME_PRESETS = (("now-5m", "Last 5 minutes"), ("now-15m", "Last 15 minutes"), ("now-1h", "Last 1 hour"),
                ("now-6h", "Last 6 hours"), ("now-24h", "Last 24 hours"), ("now-7d", "Last 7 days"),
                ("now-30d", "Last 30 days"), ("now-90d", "Last 90 days"), ("now/d", "Today so far"),
                ("now/M", "This month so far"))
REFRESH_INTERVALS = ["10s", "30s", "1m", "5m", "15m", "30m", "1h"]
REFRESH = "1m"
# Base labels with their dashboard variable (name, title); dimensions use their own name.
BASE_VARIABLES = (("service_name", "service", "Service"), ("environment", "environment", "Environment"),
                  ("provider", "provider", "Provider"), ("model", "model", "Model"),
                  ("operation", "operation", "Operation"))
RESERVED_VARIABLES = frozenset({"datasource", "budget"})


@attr.s
class DatasourceVariable(Template):
    """The Prometheus data source picker; every query uses it through `${datasource}`."""

    def to_json_data(self) -> dict[str, Any]:
        return {"current": {}, "hide": 0, "includeAll": False, "label": self.label, "multi": False,
                "name": self.name, "options": [], "query": self.query, "refresh": 1, "regex": "",
                "skipUrlSync": False, "type": "datasource"}


@attr.s
class LabelVariable(Template):
    """A multi-select label filter with All (matches everything, `.*`)."""

    def to_json_data(self) -> dict[str, Any]:
        return {"allValue": ".*", "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "datasource": DATASOURCE, "definition": self.query, "hide": 0, "includeAll": True,
                "label": self.label, "multi": True, "name": self.name, "options": [],
                "query": {"query": self.query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "refresh": 2, "regex": "", "skipUrlSync": False, "sort": 1, "type": "query"}


@dataclass(frozen=True)
class Ctx:
    """One config's names, filters and money conversion, as the dashboard builders need them."""

    config: Config

    @cached_property
    def contract(self) -> Contract:
        return Contract.from_config(self.config)

    @cached_property
    def r(self) -> RuleNames:
        return RuleNames.of(self.contract)

    @property
    def n(self) -> MetricNames:
        return self.contract.names

    @cached_property
    def dims(self) -> tuple[str, ...]:
        for dim in self.contract.dimensions:
            if dim in RESERVED_VARIABLES:
                raise ValueError(f"dimension {dim!r} clashes with the dashboard variable of the same name; rename it")
        return self.contract.dimensions

    @cached_property
    def variable_of(self) -> dict[str, str]:
        """Label name -> dashboard variable name."""
        return {**{label: var for label, var, _ in BASE_VARIABLES}, **{d: d for d in self.dims}}

    def filters(self, labels: tuple[str, ...] | list[str], *extra: str) -> str:
        """`{label=~"$var",...,extra}` for the filterable labels among `labels`."""
        parts = [f'{label}=~"${self.variable_of[label]}"' for label in labels if label in self.variable_of]
        parts.extend(e for e in extra if e)
        return "{" + ",".join(parts) + "}" if parts else ""

    def attribution(self, *extra: str) -> str:
        """Filters for requests, tokens and cost (base labels and every dimension)."""
        return self.filters(self.r.attribution_labels, *extra)

    def service_model(self, *extra: str) -> str:
        """Filters for service_model-level rules (no operation, no dimensions there)."""
        return self.filters(SERVICE_MODEL, *extra)

    def histogram(self, *extra: str) -> str:
        """Filters for the histogram rules (service, model and operation; no dimensions)."""
        return self.filters(SERVICE_MODEL_OPERATION, *extra)

    def raw(self, *extra: str) -> str:
        """Filters for the raw usage counters (every label the 15-minute rules keep)."""
        return self.attribution(*extra)

    def service_provider_model(self, *extra: str) -> str:
        """Filters for unpriced and unmetered counters."""
        return self.filters(("service_name", "provider", "model"), *extra)

    @property
    def per_usd(self) -> Decimal:
        return self.config.pricing.currency.per_usd

    @property
    def money_unit(self) -> str:
        return currency_unit(self.config.pricing.currency.code)

    def money(self, expr: str) -> str:
        """USD `expr` in the configured display currency."""
        if self.per_usd == 1:
            return expr
        return f"({expr}) * {num(float(self.per_usd))}"

    def total(self, rule: str, *extra: str, by: str = "", window: str = "$__range", offset: str = "") -> str:
        """Sum of a 15-minute-increase rule over `window` (the range, or `$__interval` per point)."""
        grouping = f" by ({by})" if by else ""
        shift = f" offset {offset}" if offset else ""
        return f"sum{grouping} (sum_over_time({rule}{self.attribution(*extra)}[{window}]{shift}))"

    def variables(self) -> list[Template]:
        """datasource, service, environment, provider, model and each active dimension."""
        n = self.n
        out: list[Template] = [DatasourceVariable(name="datasource", query="prometheus", label="Data source")]
        chain: list[str] = []
        for label, var, title in BASE_VARIABLES:
            out.append(LabelVariable(name=var, label=title,
                                     query=f"label_values({n.requests}{self._chain(chain)}, {label})"))
            chain.append(label)
        for dim in self.dims:
            out.append(LabelVariable(name=dim, label=dim.replace("_", " ").capitalize(),
                                     query=f"label_values({n.requests}{self._chain(chain)}, {dim})"))
        return out

    def _chain(self, labels: list[str]) -> str:
        return self.filters(labels)


def target(expr: str, ref: str = "A", legend: str = "", instant: bool = False, table: bool = False,
           interval: str = "") -> PromTarget:
    return PromTarget(expr=expr, refId=ref, legendFormat=legend, instant=instant,
                      format="table" if table else "time_series", interval=interval)


def links(uid: str) -> list[DashboardLink]:
    """The other genai-meter dashboards (keeping time and filters), then the time presets."""
    out = [DashboardLink(asDropdown=True, includeVars=True, keepTime=True, tags=[TAG], title="Dashboards",
                         type="dashboards")]
    for start, title in TIME_PRESETS:
        short = start.removeprefix("now-").replace("now/d", "today").replace("now/M", "this month")
        out.append(DashboardLink(icon="dashboard", includeVars=True, keepTime=False, title=short, tooltip=title,
                                 type="link", uri=f"/d/{uid}?from={start}&to=now"))
    return out


def build(*, uid: str, title: str, description: str, layout: Layout, variables: list[Template],
          time_from: str) -> dict[str, Any]:
    """The dashboard envelope, as plain JSON-ready data."""
    board = Dashboard(
        title=title, uid=uid, description=description, tags=[TAG], panels=layout.panels,
        templating=Templating(list=variables), time=Time(f"now-{time_from}", "now"),
        timePicker=TimePicker(refreshIntervals=REFRESH_INTERVALS, timeOptions=[]), timezone="utc",
        refresh=REFRESH, graphTooltip=1, editable=True, links=links(uid), schemaVersion=SCHEMA_VERSION,
        version=1,
    )
    data: dict[str, Any] = json.loads(json.dumps(board.to_json_data(), cls=DashboardEncoder))
    for key in ("__inputs", "gnetId", "hideControls", "rows", "sharedCrosshair", "style"):
        data.pop(key, None)
    data["timepicker"] = {
        "quick_ranges": [{"display": t, "from": start, "to": "now"} for start, t in TIME_PRESETS],
        "refresh_intervals": REFRESH_INTERVALS,
    }
    data["fiscalYearStartMonth"] = 0
    data["weekStart"] = "monday"
    return data
