"""PromQL text helpers shared by the rule and dashboard generators (pure string functions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from genai_meter.config import BudgetConfig


def num(value: float | int) -> str:
    """A number as PromQL literal text, without a needless `.0` (20.0 -> "20", 0.05 -> "0.05")."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return repr(value)


def quote(value: str) -> str:
    """A PromQL string literal (double quotes, backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def matchers(pairs: Mapping[str, str] | Iterable[tuple[str, str]], *, regex: bool = False) -> str:
    """`{a="x",b="y"}` (or `=~` when `regex`); empty pairs give an empty string."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    op = "=~" if regex else "="
    inner = ",".join(f"{k}{op}{quote(v)}" for k, v in items)
    return "{" + inner + "}" if inner else ""


def selector(metric: str, *parts: str) -> str:
    """`metric{part1,part2}` from already formatted matcher parts (empty parts dropped)."""
    inner = ",".join(p for p in parts if p)
    return f"{metric}{{{inner}}}" if inner else metric


def by(labels: tuple[str, ...] | list[str]) -> str:
    """`by (a, b)` for an aggregation."""
    return f"by ({', '.join(labels)})"


def period_seconds_left(budget: BudgetConfig) -> str:
    """A labelless one-element vector: seconds until the budget's current calendar period ends.

    Periods start at midnight (day), Monday midnight (ISO week) or the 1st (month) at the
    budget's UTC offset. The Unix epoch fell on a Thursday, three days after a Monday.
    """
    offset = int(budget.offset.total_seconds())
    now = f"time() + {offset}" if offset > 0 else f"time() - {-offset}" if offset < 0 else "time()"
    shifted = f"({now})" if offset else now
    if budget.period == "day":
        return f"vector(86400 - {shifted} % 86400)"
    if budget.period == "week":
        return f"vector(604800 - ({now} + 259200) % 604800)"
    at = f"vector({now})"
    return f"(days_in_month({at}) - day_of_month({at})) * 86400 + 86400 - {shifted} % 86400"


# How far back "the current rate" of a budget looks, by period length: long enough to smooth
# the daily cycle of a monthly budget, short enough to react within a day budget.
RATE_WINDOW: dict[str, str] = {"day": "1h", "week": "6h", "month": "1d"}


def same_hour_days(series: str, days: int = 7) -> list[str]:
    """`series` one to `days` days ago at this hour; missing days before the last count as zero.

    The last day must exist, so a series needs `days` days of history before it has a baseline.
    """
    return [f"({series} offset {d}d or {series} * 0)" for d in range(1, days)] + [f"{series} offset {days}d"]


def seasonal_mean(series: str, days: int = 7) -> str:
    """Mean of `series` at this hour over the previous `days` days."""
    return "(\n  " + "\n+ ".join(same_hour_days(series, days)) + f"\n) / {days}"


def seasonal_stddev(series: str, mean: str, days: int = 7) -> str:
    """Population deviation of `series` at this hour over the previous `days` days around `mean`."""
    squares = [f"({day} - {mean}) ^ 2" for day in same_hour_days(series, days)]
    return "sqrt((\n  " + "\n+ ".join(squares) + f"\n) / {days})"
