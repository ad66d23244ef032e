"""Panel types in the JSON shape of the dashboard schema version we declare (`SCHEMA_VERSION`).

grafanalib 0.7.1 emits some pre-v8 panel JSON (bar gauge `fieldOptions`, table `displayMode`,
string datasources, `intervalFactor`). Declaring a current schemaVersion over such JSON would stop
Grafana from migrating it, so these subclasses of grafanalib's `Panel` and `Target` emit the
current shape directly: datasource references by uid (schema 36), `legend.showLegend` (37), table
`cellOptions` (38), string `refresh` (40), no `timepicker.time_options` (41).
"""

from __future__ import annotations

from typing import Any

import attr
from grafanalib.core import Panel, Target

SCHEMA_VERSION = 41
DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}

# Units (Grafana unit ids).
TOKENS = "count:tokens"
SECONDS = "s"
PERCENT = "percentunit"
REQUESTS = "short"
REQ_PER_SEC = "reqps"

GRAFANA_CURRENCIES = frozenset({
    "USD", "GBP", "EUR", "JPY", "RUB", "UAH", "BRL", "DKK", "ISK", "NOK", "SEK", "CZK", "CHF", "PLN",
    "ZAR", "INR", "KRW", "IDR", "PHP", "VND", "TRY", "MYR", "XPF", "BGN", "PYG", "UYU", "ILS",
})


def currency_unit(code: str) -> str:
    """Grafana's unit for an ISO 4217 code; a scaled custom currency unit for the others."""
    return f"currency{code}" if code in GRAFANA_CURRENCIES else f"currency:{code} "


def steps(*pairs: tuple[str, float | None]) -> dict[str, Any]:
    """Absolute thresholds: [("green", None), ("red", 0.9)] -> fieldConfig thresholds."""
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for color, value in pairs]}


NEUTRAL = steps(("text", None))


@attr.s
class PromTarget(Target):
    """A Prometheus query; `instant` for one value at the range end, else a range query."""

    def to_json_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": self.expr,
            "format": self.format,
            "instant": self.instant,
            "legendFormat": self.legendFormat or "__auto",
            "range": not self.instant,
            "refId": self.refId,
        }
        if self.interval:
            data["interval"] = self.interval
        return data


def _base(panel: Panel, extra: dict[str, Any]) -> dict[str, Any]:
    """Panel JSON without grafanalib's legacy keys."""
    data: dict[str, Any] = panel.panel_json(extra)
    for key in ("cacheTimeout", "editable", "error", "height", "hideTimeOverride", "minSpan", "span",
                "timeFrom", "timeShift", "transparent", "repeat", "repeatDirection", "maxPerRow",
                "thresholds", "thresholdType"):
        data.pop(key, None)
    if data.get("interval") is None:
        data.pop("interval", None)
    if not data.get("description"):
        data.pop("description", None)
    data["datasource"] = DATASOURCE
    data["maxDataPoints"] = panel.maxDataPoints
    return data


def _field_config(unit: str, thresholds: dict[str, Any], color: dict[str, Any],
                  custom: dict[str, Any] | None = None, **defaults: Any) -> dict[str, Any]:
    return {
        "defaults": {"color": color, "custom": custom or {}, "mappings": [], "thresholds": thresholds,
                     "unit": unit, **{k: v for k, v in defaults.items() if v is not None}},
        "overrides": [],
    }


def _reduce(calc: str = "lastNotNull", values: bool = False) -> dict[str, Any]:
    return {"calcs": [calc], "fields": "", "values": values}


@attr.s
class StatPanel(Panel):
    """One or a few numbers (instant queries)."""

    unit = attr.ib(default=REQUESTS)
    decimals = attr.ib(default=None)
    colors = attr.ib(default=attr.Factory(lambda: NEUTRAL))
    noValue = attr.ib(default=None)
    textMode = attr.ib(default="auto")
    maxDataPoints = attr.ib(default=100)
    relativeTime = attr.ib(default=None)  # a fixed range of the panel's own ("1h", "now/d"), shown in its header

    def to_json_data(self) -> dict[str, Any]:
        data = _base(self, {
            "type": "stat",
            "fieldConfig": _field_config(self.unit, self.colors, {"mode": "thresholds"},
                                         decimals=self.decimals, noValue=self.noValue),
            "options": {"colorMode": "value", "graphMode": "none", "justifyMode": "auto",
                        "orientation": "auto", "reduceOptions": _reduce(), "showPercentChange": False,
                        "textMode": self.textMode, "wideLayout": True},
        })
        if self.relativeTime:
            data["timeFrom"] = self.relativeTime
            data["hideTimeOverride"] = False
        return data


@attr.s
class GaugePanel(Panel):
    """A share of a limit."""

    unit = attr.ib(default=PERCENT)
    colors = attr.ib(default=attr.Factory(lambda: NEUTRAL))
    min = attr.ib(default=0)
    max = attr.ib(default=1)
    maxDataPoints = attr.ib(default=100)

    def to_json_data(self) -> dict[str, Any]:
        return _base(self, {
            "type": "gauge",
            "fieldConfig": _field_config(self.unit, self.colors, {"mode": "thresholds"}, min=self.min, max=self.max),
            "options": {"minVizHeight": 75, "minVizWidth": 75, "orientation": "auto", "reduceOptions": _reduce(),
                        "showThresholdLabels": False, "showThresholdMarkers": True, "sizing": "auto"},
        })


@attr.s
class BarGaugePanel(Panel):
    """A ranked breakdown (one bar per series of an instant query)."""

    unit = attr.ib(default=REQUESTS)
    colors = attr.ib(default=attr.Factory(lambda: steps(("blue", None))))
    min = attr.ib(default=0)
    max = attr.ib(default=None)
    noValue = attr.ib(default=None)
    maxDataPoints = attr.ib(default=100)

    def to_json_data(self) -> dict[str, Any]:
        return _base(self, {
            "type": "bargauge",
            "fieldConfig": _field_config(self.unit, self.colors, {"mode": "thresholds"}, min=self.min,
                                         max=self.max, noValue=self.noValue),
            "options": {"displayMode": "gradient", "maxVizHeight": 300, "minVizHeight": 16, "minVizWidth": 8,
                        "namePlacement": "auto", "orientation": "horizontal", "reduceOptions": _reduce(),
                        "showUnfilled": True, "sizing": "auto", "valueMode": "color"},
        })


@attr.s
class TimeSeriesPanel(Panel):
    """Values over the dashboard range (range queries)."""

    unit = attr.ib(default=REQUESTS)
    stacked = attr.ib(default=False)
    bars = attr.ib(default=False)
    colors = attr.ib(default=attr.Factory(lambda: steps(("green", None))))
    thresholdLines = attr.ib(default=False)
    min = attr.ib(default=None)
    maxDataPoints = attr.ib(default=500)

    def to_json_data(self) -> dict[str, Any]:
        custom = {
            "axisBorderShow": False, "axisCenteredZero": False, "axisColorMode": "text", "axisLabel": "",
            "axisPlacement": "auto", "barAlignment": 0, "drawStyle": "bars" if self.bars else "line",
            "fillOpacity": 60 if self.bars else 10, "gradientMode": "none",
            "hideFrom": {"legend": False, "tooltip": False, "viz": False}, "insertNulls": False,
            "lineInterpolation": "linear", "lineWidth": 1, "pointSize": 4,
            "scaleDistribution": {"type": "linear"}, "showPoints": "never", "spanNulls": False,
            "stacking": {"group": "A", "mode": "normal" if self.stacked else "none"},
            "thresholdsStyle": {"mode": "dashed" if self.thresholdLines else "off"},
        }
        return _base(self, {
            "type": "timeseries",
            "fieldConfig": _field_config(self.unit, self.colors, {"mode": "palette-classic"}, custom, min=self.min),
            "options": {"legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}},
        })


@attr.s
class TablePanel(Panel):
    """Rows from instant table queries, joined on their labels."""

    columns = attr.ib(default=attr.Factory(dict))  # refId -> (column title, unit)
    hidden = attr.ib(default=attr.Factory(list))  # label columns not to show
    sortColumn = attr.ib(default=None)
    noValue = attr.ib(default=None)
    maxDataPoints = attr.ib(default=100)
    matrix = attr.ib(default=None)  # (row label, column label, column names): a label x label grid

    def to_json_data(self) -> dict[str, Any]:
        # Grafana names the value column of one table query "Value", of several "Value #<refId>".
        single = len(self.targets) == 1
        ordered = sorted(self.columns.items())
        rename = {("Value" if single else f"Value #{ref}"): title for ref, (title, _unit) in ordered}
        units = [column for _ref, column in ordered]
        if self.matrix:
            units = [(name, units[0][1]) for name in self.matrix[2]]
        overrides = [
            {"matcher": {"id": "byName", "options": title}, "properties": [{"id": "unit", "value": unit}]}
            for title, unit in units
        ]
        exclude = dict.fromkeys(["Time", *self.hidden], True)
        transformations: list[dict[str, Any]] = [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": exclude, "indexByName": {}, "renameByName": rename}},
        ]
        if self.matrix:
            row, column, _names = self.matrix
            transformations = [{"id": "groupingToMatrix", "options": {
                "columnField": column, "rowField": row, "valueField": "Value", "emptyValue": "zero"}}]
        sort_by = []
        if self.sortColumn:
            sort_by = [{"desc": True, "displayName": self.sortColumn}]
        config = _field_config(REQUESTS, NEUTRAL, {"mode": "thresholds"},
                               {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": False,
                                "inspect": False},
                               noValue=self.noValue)
        config["overrides"] = overrides
        return _base(self, {
            "type": "table",
            "fieldConfig": config,
            "options": {"cellHeight": "sm", "footer": {"countRows": False, "fields": "", "reducer": ["sum"],
                                                       "show": False},
                        "showHeader": True, "sortBy": sort_by},
            "transformations": transformations,
        })


@attr.s
class PieChartPanel(Panel):
    """Shares of a whole (one slice per series of an instant query)."""

    unit = attr.ib(default=REQUESTS)
    maxDataPoints = attr.ib(default=100)

    def to_json_data(self) -> dict[str, Any]:
        return _base(self, {
            "type": "piechart",
            "fieldConfig": _field_config(self.unit, NEUTRAL, {"mode": "palette-classic"},
                                         {"hideFrom": {"legend": False, "tooltip": False, "viz": False}}),
            "options": {"displayLabels": ["percent"], "reduceOptions": _reduce(),
                        "legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                                   "values": ["value", "percent"]},
                        "pieType": "pie", "tooltip": {"mode": "single", "sort": "none"}},
        })


@attr.s
class TextPanel(Panel):
    """Markdown text (no query)."""

    content = attr.ib(default="")

    def to_json_data(self) -> dict[str, Any]:
        data = _base(self, {"type": "text", "options": {"code": {"language": "plaintext", "showLineNumbers": False,
                                                                   "showMiniMap": False},
                                                          "content": self.content, "mode": "markdown"}})
        del data["datasource"]
        data.pop("maxDataPoints", None)
        data["fieldConfig"] = {"defaults": {}, "overrides": []}
        data["targets"] = []
        return data


@attr.s
class RowHeader(Panel):
    """A (never collapsed) row title spanning the dashboard width."""

    def to_json_data(self) -> dict[str, Any]:
        return {"collapsed": False, "gridPos": self.gridPos, "id": self.id, "panels": [], "title": self.title,
                "type": "row"}
