"""Dashboard uids and the panels that alerts link to: the one place both generators read.

A linked panel gets a fixed id (100 and up; the layout numbers the other panels from 1), so an
alert's `dashboard_url` annotation keeps pointing at it however the dashboard grows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

OVERVIEW_UID = "genai-meter-overview"
COST_UID = "genai-meter-cost"
PERFORMANCE_UID = "genai-meter-performance"
BUDGETS_UID = "genai-meter-budgets"
USAGE_UID = "genai-meter-usage"
FIRST_LINKED_ID = 100  # ids below this are the layout's


@dataclass(frozen=True)
class PanelRef:
    """A panel an alert links to: its dashboard and its fixed id."""

    uid: str
    panel_id: int


BUDGETS_TABLE = PanelRef(BUDGETS_UID, 100)
COST_BY_SERVICE = PanelRef(COST_UID, 100)
UNPRICED_MODELS = PanelRef(COST_UID, 101)
ERROR_RATE_BY_MODEL = PanelRef(PERFORMANCE_UID, 100)
LATENCY_P95_BY_MODEL = PanelRef(PERFORMANCE_UID, 101)
METER_SPANS = PanelRef(OVERVIEW_UID, 100)
UNMETERED_CALLS = PanelRef(OVERVIEW_UID, 101)
LABEL_OVERFLOW = PanelRef(OVERVIEW_UID, 102)
TOP_USAGE = PanelRef(USAGE_UID, 100)
REQUESTS_BY_MODEL = PanelRef(USAGE_UID, 101)
USAGE_OVER_TIME = PanelRef(USAGE_UID, 102)


def panel_url(base_url: str, ref: PanelRef, variables: Mapping[str, str] | None = None,
              time_from: str = "now-24h") -> str:
    """The Grafana URL of one panel, with dashboard variables set from alert labels.

    `variables` maps a dashboard variable to an alert label; the value is filled in (URL-quoted)
    by Prometheus when the alert fires: {"model": "model"} -> `&var-model={{ $labels.model | urlquery }}`.
    """
    url = f"{base_url.rstrip('/')}/d/{ref.uid}?viewPanel={ref.panel_id}&from={time_from}&to=now"
    for variable, label in sorted((variables or {}).items()):
        url += f"&var-{variable}={{{{ $labels.{label} | urlquery }}}}"
    return url
