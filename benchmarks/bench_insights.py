"""Forecasts and budgets on the report service: the answers the page waits for.

    .venv/bin/python -m benchmarks.bench_insights [--days 30] [--history 60]

`--history` days of synthetic history (`reports.web.history`, the demo's) are written by the ledger's
writer into a temporary SQLite ledger with three budgets (month, week, a day budget on a pattern);
then, through the Flask app (real routing, validation, JSON), best of 7:
- the trend report over the last `--days` days (its series, heatmap, comparisons and the 14-day
  forecast table), target < 1 s;
- `/api/v1/forecast` (daily forecast and the month's projection) and `/api/v1/budgets`;
- one daily-forecast fit on the same 56-day cost series, beside statsmodels' ETS fit of the same model
  family (maximum likelihood) when statsmodels happens to be installed (it is no dependency): the
  ratio is the speed-up of the grid fit, measured in the same run.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from pathlib import Path

import yaml

from benchmarks.harness import best_of, report
from genai_meter.config import load_config
from genai_meter.ledger import open_reader, open_writer
from genai_meter.reports.insights import forecast
from genai_meter.reports.insights.budgets import daily_history
from genai_meter.reports.service.app import create_app
from genai_meter.reports.web.history import synthetic_history

BUDGETS = [{"name": "all-monthly", "period": "month", "limit_usd": "250"},
           {"name": "acme-weekly", "match": {"organization": "acme"}, "period": "week", "limit_usd": "40"},
           {"name": "web-daily", "match": {"service_name": "~synthetic-w.*"}, "period": "day", "limit_usd": "10"}]


def statsmodels_fit(values: list[float], horizon: int) -> float | None:
    """Seconds for statsmodels' ETS(A,Ad,A) maximum-likelihood fit and forecast (None when not installed)."""
    try:
        import pandas as pd  # optional: only for the comparison, never a dependency
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    except ModuleNotFoundError:
        return None

    def run() -> None:
        data = pd.Series([math.log1p(max(0.0, v)) for v in values], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ETSModel(data, error="add", trend="add", damped_trend=True, seasonal="add",
                           seasonal_periods=7).fit(disp=False, maxiter=100)
            fit.get_prediction(start=len(data), end=len(data) + horizon - 1).summary_frame(alpha=0.2)

    return best_of(run, repeats=3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30, help="the trend report's range in days")
    parser.add_argument("--history", type=int, default=60, help="days of synthetic history in the ledger")
    ns = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "genai-meter.yaml"
        path.write_text(yaml.safe_dump({"ledger": {"url": f"sqlite:///{Path(tmp) / 'ledger.db'}"}, "budgets": BUDGETS}))
        config = load_config(path)
        assert config.ledger.url is not None
        now_ns = time.time_ns()
        entries = synthetic_history(config, ns.history, now_ns, seed=1)
        writer = open_writer(config.ledger.url, config)
        try:
            for i in range(0, len(entries), 2000):
                assert all(writer.submit(entries[i:i + 2000]).result(timeout=120))
        finally:
            writer.close()
        reader = open_reader(config.ledger.url, config)
        try:
            client = create_app(config, reader, clock=lambda: now_ns).test_client()

            def get(url: str) -> None:
                forecast._cached.cache_clear()  # every run fits afresh, as a first request would
                answer = client.get(url)
                assert answer.status_code == 200, answer.get_data(as_text=True)

            rows = []
            for name, url, target in ((f"trend report, {ns.days} days", f"/api/v1/reports/trend?range={ns.days}d",
                                       "target < 1 s"),
                                      ("forecast (30 days, month projection)", "/api/v1/forecast", ""),
                                      ("budgets (3, with projections and charts)", "/api/v1/budgets", "")):
                rows.append((name, f"{best_of(lambda u=url: get(u)) * 1000:.0f} ms", target))
            values = [p / 1e12 for p in daily_history(reader, {}, now_ns, config.budgets[0].offset).cost_pico]
        finally:
            reader.close()

    def fit() -> None:
        forecast._cached.cache_clear()
        forecast.forecast_daily(values, 45)

    ours = best_of(fit)
    rows.append((f"daily forecast fit ({len(values)} days, grid ETS)", f"{ours * 1000:.1f} ms", ""))
    theirs = statsmodels_fit(values, 45)
    if theirs is not None:
        rows.append(("same model, statsmodels maximum likelihood", f"{theirs * 1000:.0f} ms",
                     f"{theirs / ours:.0f}x the grid fit"))
    report(f"insights over {len(entries):,} calls ({ns.history} days of synthetic history)", rows)


if __name__ == "__main__":
    main()
