"""Grafana dashboards built from the config with grafanalib (pure: config in, JSON-ready data out)."""

from __future__ import annotations

from typing import Any

from genai_meter.config import Config
from genai_meter.dashboards.budgets import build_budgets
from genai_meter.dashboards.common import Ctx
from genai_meter.dashboards.cost import build_cost
from genai_meter.dashboards.overview import build_overview
from genai_meter.dashboards.panels import SCHEMA_VERSION
from genai_meter.dashboards.performance import build_performance
from genai_meter.dashboards.usage import build_usage


def build_dashboards(config: Config) -> dict[str, dict[str, Any]]:
    """Dashboards by file name (`<uid>.json`), each the dashboard JSON model as data."""
    ctx = Ctx(config)
    boards = [build_overview(ctx), build_usage(ctx), build_cost(ctx), build_performance(ctx), build_budgets(ctx)]
    return {f"{board['uid']}.json": board for board in boards}


__all__ = ["SCHEMA_VERSION", "build_dashboards"]
