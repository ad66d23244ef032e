"""The questions of the reports benchmark and their canonical answers.

Every engine answers a question with the same canonical form, compared to the last digit:
- grouped questions: {key: [calls, errors, tokens, cost pico]} where key is the group's value (or
  "day|value" for a per-day question) and the remainder group is OTHER ("day|" + OTHER per day);
  the groups add up to the ungrouped total of the same range (checked by the driver);
- exports: {"rows": n, "calls": sum, "cost": pico} (rows per second is the figure).

Ranges end at the data set's clock (NOW_NS, 12:00 UTC), so every range has part-day edges.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.reports_data import DAY_NS, NOW_NS

OTHER = "~other"
Vec = list[int]  # calls, errors, tokens, cost pico
Answer = dict[str, object]


@dataclass(frozen=True)
class Question:
    name: str
    title: str
    days: int  # the range: [NOW - days, NOW)
    group: str = ""  # "", "customer", "model" (provider/model) or "day", "day_customer"
    top: int = 0  # 0: every group; k: the top k by cost (then key) and the exact remainder OTHER
    customer: str = ""  # a filter on one customer
    export: str = ""  # "groups" (every customer's row as CSV) or "calls" (every call as CSV)
    api: str = ""  # the report service's path answering it ("" when none)

    @property
    def start_ns(self) -> int:
        return NOW_NS - self.days * DAY_NS


FILTER_CUSTOMER = "cust-10"
QUESTIONS = [
    Question("summary_90d", "summary 90d (ungrouped)", 90, api="/api/v1/reports/summary?range=90d"),
    Question("customer_30d", "summary 30d by customer, top 100 + rest", 30, "customer", top=100,
             api="/api/v1/reports/summary?range=30d&group_by=customer&limit=100"),
    Question("trend_day_90d", "trend 90d by day", 90, "day", api="/api/v1/reports/trend?range=90d&step=1d"),
    Question("trend_day_customer_90d", "trend 90d by day x customer, top 10 + rest per day", 90, "day_customer",
             top=10, api="/api/v1/reports/trend?range=90d&step=1d&group_by=customer&limit=10"),
    Question("customers_csv_30d", "detailed CSV, every customer, 30d", 30, "customer", export="groups",
             api="/api/v1/reports/detailed?range=30d&group_by=customer&format=csv"),
    Question("calls_csv_3d", "calls CSV (events export), 3d", 3, export="calls",
             api="/api/v1/events?format=csv&from=2026-11-17T12:00:00Z&to=2026-11-20T12:00:00Z"),
    Question("cost_model_7d", "cost by model 7d", 7, "model", api="/api/v1/reports/cost?range=7d"),
    Question("customer_filter_90d", f"one customer ({FILTER_CUSTOMER}) 90d", 90, customer=FILTER_CUSTOMER,
             api=f"/api/v1/reports/summary?range=90d&customer={FILTER_CUSTOMER}"),
]
BY_NAME = {q.name: q for q in QUESTIONS}


def key_of(q: Question, day: int, value: str) -> str:
    if q.group == "day":
        return str(day)
    if q.group == "day_customer":
        return f"{day}|{value}"
    return value


def top_rest(q: Question, groups: dict[str, Vec]) -> dict[str, Vec]:
    """`groups` cut to the question's top k by cost (ties: key) plus the exact remainder OTHER; per day
    for a per-day question. Used by engines that return every group (and the Python reader)."""
    if not q.top:
        return groups
    parts: dict[str, dict[str, Vec]] = {}
    for key, vec in groups.items():
        day, _, value = key.rpartition("|") if q.group == "day_customer" else ("", "", key)
        parts.setdefault(day, {})[value] = vec
    out: dict[str, Vec] = {}
    for day, rows in parts.items():
        ranked = sorted(rows.items(), key=lambda kv: (-kv[1][3], kv[0]))
        prefix = f"{day}|" if q.group == "day_customer" else ""
        for value, vec in ranked[:q.top]:
            out[prefix + value] = vec
        rest = [0, 0, 0, 0]
        for _, vec in ranked[q.top:]:
            rest = [a + b for a, b in zip(rest, vec)]
        if len(ranked) > q.top:
            out[prefix + OTHER] = rest
    return out


def total_of(groups: dict[str, Vec]) -> list[int | None]:
    """The sum of the groups' vectors (None where an answer does not give a figure)."""
    total: list[int | None] = [0, 0, 0, 0]
    for vec in groups.values():
        total = [None if a is None or b is None else a + b for a, b in zip(total, vec)]
    return total
