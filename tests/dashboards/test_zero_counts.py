"""Counts of things that should not happen (unmetered, unpriced, sampled, overflow) read 0 on a fresh
Prometheus, not "No data": the queries end in `or vector(0)` and a real Prometheus answers 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_meter.config import load_config
from genai_meter.dashboards import build_dashboards
from tests.dashboards.test_dashboards import substitute
from tests.support.prometheus import start_prometheus

REPO = Path(__file__).resolve().parents[2]
ZERO_STATS = ("Unmetered calls", "Unpriced calls", "Sampled spans", "Label overflow")

pytestmark = pytest.mark.slow


def stat_queries() -> dict[str, str]:
    found: dict[str, str] = {}

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            if panel.get("title") in ZERO_STATS and panel.get("type") == "stat":
                found[panel["title"]] = panel["targets"][0]["expr"]
            walk(panel.get("panels", []))

    for board in build_dashboards(load_config(REPO / "deploy" / "genai-meter.yaml")).values():
        walk(board["panels"])
    return found


def test_zero_counts_read_0_on_a_prometheus_without_them(tmp_path: Path) -> None:
    queries = stat_queries()
    assert set(queries) == set(ZERO_STATS)
    prometheus = start_prometheus({"global": {"scrape_interval": "15s"}}, workdir=tmp_path)
    try:
        for title, expr in queries.items():
            assert expr.rstrip().endswith("or vector(0)"), title
            result = prometheus.query(substitute(expr))
            assert [float(r["value"][1]) for r in result] == [0.0], (title, result)
    finally:
        prometheus.stop()
