"""Daily forecasts with a range: conservative (10th percentile), likely, aggressive (90th percentile).

Method, by the length of the daily history (days with and without calls, oldest first):
- >= 21 days: statsmodels ETS (additive error, additive damped trend, additive weekly seasonality)
  fitted by maximum likelihood on the history after clipping spikes (values above median + 6 MAD
  are cut to that bound), with the 80 % prediction interval as the range;
- 7..20 days: seasonal naive with drift: the last week's level times each weekday's factor, plus
  the drift between the first and last week; range +- 1.28 residual deviations, widening with h;
- 1..6 days: the mean, range +- 1.28 standard deviations (at least +-50 % of the mean);
- no history: zeros.
Forecasts are estimates in float; values are clipped at zero. Money figures stay exact elsewhere.
statsmodels is imported with this module (seconds), so the service pays it at start, not on a request.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from statistics import mean, median, pstdev

import numpy as np

Z80 = 1.2816  # the 80 % two-sided normal quantile: 10th..90th percentile


@dataclass(frozen=True, slots=True)
class Band:
    """One forecast day: low (conservative), likely, high (aggressive)."""

    low: float
    likely: float
    high: float


def _clip_spikes(values: list[float]) -> list[float]:
    """Values more than 5 robust deviations above their centred 7-day median replaced by that median."""
    n = len(values)
    if n < 5:
        return list(values)
    local = [median(values[max(0, i - 3):i + 4]) for i in range(n)]
    residuals = [v - m for v, m in zip(values, local)]
    mad = median(abs(r) for r in residuals) * 1.4826
    if mad == 0:
        return list(values)
    return [m if r > 5 * mad else v for v, m, r in zip(values, local, residuals)]


def _ets(values: list[float], horizon: int) -> list[Band]:
    # statsmodels and pandas take seconds to import: loaded on the first forecast, not with the CLI
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    data = pd.Series([math.log1p(max(0.0, v)) for v in _clip_spikes(values)], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ETSModel(data, error="add", trend="add", damped_trend=True, seasonal="add", seasonal_periods=7)
        fit = model.fit(disp=False, maxiter=100)
        frame = fit.get_prediction(start=len(data), end=len(data) + horizon - 1).summary_frame(alpha=0.2)
    out = []
    for likely, low, high in zip(frame["mean"], frame["pi_lower"], frame["pi_upper"]):
        if not all(map(math.isfinite, (likely, low, high))) or max(likely, high) > 700:
            raise ArithmeticError("non-finite forecast")
        out.append(Band(max(0.0, math.expm1(low)), max(0.0, math.expm1(likely)), max(0.0, math.expm1(high))))
    return out


def _seasonal_naive(values: list[float], horizon: int) -> list[Band]:
    values = _clip_spikes(values)
    n = len(values)
    overall = mean(values)
    by_day: dict[int, list[float]] = {}
    for i, v in enumerate(values):
        by_day.setdefault(i % 7, []).append(v)
    factor = {d: (mean(vs) / overall if overall else 1.0) for d, vs in by_day.items()}
    level = mean(values[-7:])
    drift = (level - mean(values[:7])) / (n - 7) if n >= 14 else 0.0
    fitted = [factor[i % 7] * (level + drift * (i - (n - 4))) for i in range(n)]
    spread = pstdev([v - f for v, f in zip(values, fitted)]) or 0.25 * level
    out = []
    for h in range(horizon):
        likely = max(0.0, factor[(n + h) % 7] * (level + drift * (h + 4)))
        width = Z80 * spread * math.sqrt(1 + h / 7)
        out.append(Band(max(0.0, likely - width), likely, likely + width))
    return out


def forecast_daily(values: list[float], horizon: int) -> tuple[list[Band], str]:
    """`horizon` daily bands after `values` (daily totals, oldest first) and the method's name (cached)."""
    bands, method = _cached(tuple(values), horizon)
    return list(bands), method


@lru_cache(maxsize=256)
def _cached(values: tuple[float, ...], horizon: int) -> tuple[tuple[Band, ...], str]:
    bands, method = _forecast(list(values), horizon)
    return tuple(bands), method


def _forecast(values: list[float], horizon: int) -> tuple[list[Band], str]:
    if horizon <= 0:
        return [], "none"
    if not values:
        return [Band(0.0, 0.0, 0.0)] * horizon, "none (no history)"
    if len(values) >= 21 and max(values) > 0:
        try:
            return _ets(values, horizon), "ets"
        except (ArithmeticError, ValueError, np.linalg.LinAlgError):
            pass
    if len(values) >= 7:
        return _seasonal_naive(values, horizon), "seasonal_naive"
    level = mean(values)
    spread = max(Z80 * pstdev(values), 0.5 * level)
    return [Band(max(0.0, level - spread), level, level + spread)] * horizon, "mean"


def cumulative(bands: list[Band], start: float = 0.0) -> list[Band]:
    """Running sums of the bands, starting from `start` (spend so far)."""
    low = likely = high = start
    out = []
    for band in bands:
        low, likely, high = low + band.low, likely + band.likely, high + band.high
        out.append(Band(low, likely, high))
    return out
