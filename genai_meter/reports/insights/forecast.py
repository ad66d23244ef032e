"""Daily forecasts with a range: conservative (10th percentile), likely, aggressive (90th percentile).

Method, by the length of the daily history (days with and without calls, oldest first):
- >= 21 days: exponential smoothing with a damped additive trend and additive weekly seasonality,
  ETS(A,Ad,A), on `log1p` of the values after clipping spikes; its four smoothing parameters are
  chosen on a fixed grid by the smallest one-step squared error (no optimiser, no statsmodels: a
  few milliseconds), and the range is the model's 80 % prediction interval (Hyndman et al. 2008,
  class 1 variance), back-transformed;
- 7..20 days: seasonal naive with drift: the last week's level times each weekday's factor, plus
  the drift between the first and last week; range +- 1.28 residual deviations, widening with h;
- 1..6 days: the mean, range +- 1.28 standard deviations (at least +-50 % of the mean);
- no history: zeros.
Forecasts are estimates in float; values are clipped at zero. Money figures stay exact elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from statistics import mean, median, pstdev

Z80 = 1.2816  # the 80 % two-sided normal quantile: 10th..90th percentile
SEASON = 7
METHOD_TEXT = {
    "ets": "exponential smoothing (weekly pattern, damped trend)",
    "seasonal_naive": "last week's pattern with its drift",
    "mean": "the mean of the days so far",
    "none": "no history yet",
}
# The grid the smoothing parameters are chosen from: level, trend, season, damping.
_ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.8)
_BETAS = (0.0, 0.01, 0.03, 0.1)
_GAMMAS = (0.0, 0.05, 0.1, 0.2, 0.4)
_PHIS = (0.8, 0.9, 0.98)
_GRID = [(a, b, g, p) for a, b, g, p in product(_ALPHAS, _BETAS, _GAMMAS, _PHIS) if b <= a and g <= 1 - a]


@dataclass(frozen=True, slots=True)
class Band:
    """One forecast day: low (conservative), likely, high (aggressive)."""

    low: float
    likely: float
    high: float


def describe(method: str, history_days: int) -> str:
    """The method in words, with the history it used ("exponential smoothing ..., 56 days of history")."""
    text = METHOD_TEXT.get(method, method)
    if method == "none" or history_days <= 0:
        return text
    return f"{text}, {history_days} day{'s' if history_days != 1 else ''} of history"


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


@dataclass(slots=True)
class _Fit:
    alpha: float
    beta: float
    gamma: float
    phi: float
    sse: float
    level: float
    trend: float
    season: list[float]  # the last SEASON seasonal states, oldest first
    residuals: int


def _initial(y: list[float]) -> tuple[float, float, list[float]]:
    """Level, trend and weekly states from the first two weeks (the first week alone: no trend)."""
    first = mean(y[:SEASON])
    trend = (mean(y[SEASON:2 * SEASON]) - first) / SEASON if len(y) >= 2 * SEASON else 0.0
    season = [v - first for v in y[:SEASON]]
    shift = mean(season)
    return first, trend, [s - shift for s in season]


def _run(y: list[float], alpha: float, beta: float, gamma: float, phi: float,
         start: tuple[float, float, list[float]]) -> _Fit:
    level, trend, init = start
    season = list(init)
    sse = 0.0
    for t, value in enumerate(y):
        s = season[t % SEASON]
        error = value - (level + phi * trend + s)
        if t >= SEASON:  # the first week made the initial states: its errors would flatter the fit
            sse += error * error
        level = level + phi * trend + alpha * error
        trend = phi * trend + beta * error
        season[t % SEASON] = s + gamma * error
    n = len(y)
    ordered = [season[(n + i) % SEASON] for i in range(SEASON)]  # the state for day n + i at index i
    return _Fit(alpha, beta, gamma, phi, sse, level, trend, ordered, max(1, n - SEASON))


def _ets(values: list[float], horizon: int) -> list[Band]:
    y = [math.log1p(max(0.0, v)) for v in _clip_spikes(values)]
    start = _initial(y)
    best = min((_run(y, a, b, g, p, start) for a, b, g, p in _GRID), key=lambda f: f.sse)
    sigma2 = best.sse / best.residuals
    out: list[Band] = []
    damped = 0.0  # phi + phi^2 + ... + phi^h
    spread = 0.0  # sum of c_j^2 for j < h
    for h in range(1, horizon + 1):
        damped += best.phi ** h
        likely = best.level + damped * best.trend + best.season[(h - 1) % SEASON]
        width = Z80 * math.sqrt(sigma2 * (1 + spread))
        if not all(map(math.isfinite, (likely, width))) or likely + width > 700:
            raise ArithmeticError("non-finite forecast")
        out.append(Band(max(0.0, math.expm1(likely - width)), max(0.0, math.expm1(likely)),
                        max(0.0, math.expm1(likely + width))))
        c = best.alpha + best.beta * damped + (best.gamma if h % SEASON == 0 else 0.0)
        spread += c * c
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
        return [], "none" if not values else _method_for(values)
    if not values:
        return [Band(0.0, 0.0, 0.0)] * horizon, "none"
    if len(values) >= 21 and max(values) > 0:
        try:
            return _ets(values, horizon), "ets"
        except ArithmeticError:
            pass
    if len(values) >= 7:
        return _seasonal_naive(values, horizon), "seasonal_naive"
    level = mean(values)
    spread = max(Z80 * pstdev(values), 0.5 * level)
    return [Band(max(0.0, level - spread), level, level + spread)] * horizon, "mean"


def _method_for(values: list[float]) -> str:
    if len(values) >= 21 and max(values) > 0:
        return "ets"
    return "seasonal_naive" if len(values) >= 7 else "mean"


def cumulative(bands: list[Band], start: float = 0.0) -> list[Band]:
    """Running sums of the bands, starting from `start` (spend so far)."""
    low = likely = high = start
    out = []
    for band in bands:
        low, likely, high = low + band.low, likely + band.likely, high + band.high
        out.append(Band(low, likely, high))
    return out
