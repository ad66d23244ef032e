"""The PDF's charts as PNG images (matplotlib, Agg backend), drawn at the size they take on the page.

Bars are horizontal (names stay readable), one line per group in a grouped series, the forecast as
its likely line inside the conservative-aggressive band, the busiest-hours table as a day x hour
heatmap. Labels go through the document's `FontPlan`, so a chart names what the tables name.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from genai_meter.money import from_pico
from genai_meter.periods import NS
from genai_meter.reports.render.fonts import FontPlan
from genai_meter.reports.render.numbers import money, money_places
from genai_meter.reports.render.tables import Cell, Table

MAX_BARS = 15
MAX_LINES = 8
LABEL_CHARS = 36
DPI = 200
BLUE, LIGHT = "#2b6cb0", "#bcd6f0"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _pyplot(plan: FontPlan) -> Any:
    # matplotlib takes a second or more to import: loaded on the first PDF, not with the CLI
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    known = {f.fname for f in font_manager.fontManager.ttflist}
    for _, path, _ in plan.faces:
        if str(path) not in known:
            font_manager.fontManager.addfont(str(path))
    plt.rcParams["font.family"] = plan.chart_families
    plt.rcParams["font.size"] = 7
    plt.rcParams["axes.spines.top"] = plt.rcParams["axes.spines.right"] = False
    return plt


def _label(plan: FontPlan, value: Cell) -> str:
    """A chart label of at most LABEL_CHARS characters: a long one keeps its start and its end."""
    text = plan.text(str(value))
    if len(text) <= LABEL_CHARS:
        return text
    tail = LABEL_CHARS // 3
    return text[:LABEL_CHARS - tail - 1] + "\u2026" + text[-tail:]


def _names(table: Table, plan: FontPlan) -> list[str]:
    """Each row's name: its text columns (every group field, not just the first), joined."""
    keys = [i for i, c in enumerate(table.columns) if c.kind == "text" and "exactness" not in c.key]
    return [_label(plan, " / ".join(str(row[i]) for i in keys)) for row in table.rows]


def _value(table: Table, key: str, row: list[Cell]) -> float | None:
    i = table.column_index(key)
    cell = row[i]
    if cell is None:
        return None
    return float(from_pico(int(cell))) if table.columns[i].kind == "usd" else float(cell)


def _money_axis(axis: Any, largest_usd: float) -> None:
    """Ticks in dollars and cents, more decimals when every amount is under a cent."""
    from matplotlib.ticker import FuncFormatter

    places = money_places([int(largest_usd * 10**12)])
    axis.set_major_formatter(FuncFormatter(lambda v, _: money(int(round(v * 10**12)), places)))


def _axis_format(ax: Any, table: Table, key: str, axis: str) -> None:
    from matplotlib.ticker import FuncFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    if table.columns[table.column_index(key)].kind == "usd":
        _money_axis(target, max((abs(_value(table, key, r) or 0.0) for r in table.rows), default=0.0))
    else:
        target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _png(fig: Any, plt: Any) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    plt.close(fig)
    return out.getvalue()


def chart_png(table: Table, plan: FontPlan, width_mm: float, height_mm: float) -> bytes | None:
    """The table's chart at `width_mm` x `height_mm`, or None when it has nothing to draw."""
    spec = table.chart
    if spec is None or not table.rows:
        return None
    plt = _pyplot(plan)
    fig, ax = plt.subplots(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=DPI)
    ax.set_title(plan.text(spec.title), fontsize=8, loc="left")
    if spec.kind == "line":
        _lines(ax, table, plan)
        _axis_format(ax, table, spec.values[len(spec.values) // 2], "y")
    elif spec.kind == "pie":
        values = [(name, _value(table, spec.values[0], r)) for name, r in zip(_names(table, plan), table.rows)]
        points = [(name, v) for name, v in values if v]
        whole = sum(v for _, v in points)
        if whole <= 0:
            plt.close(fig)
            return None
        wedges, _ = ax.pie([v for _, v in points], startangle=90, counterclock=False,
                           wedgeprops={"linewidth": 0.5, "edgecolor": "white"})
        ax.legend(wedges, [f"{name} ({v / whole:.1%})" for name, v in points], fontsize=6, loc="center left",
                  bbox_to_anchor=(1.0, 0.5), frameon=False)
        ax.axis("equal")
    else:
        named = [(name, r) for name, r in zip(_names(table, plan), table.rows)
                 if _value(table, spec.values[0], r)][:MAX_BARS]  # nothing to draw for unknown or zero
        if not named:
            plt.close(fig)
            return None
        rows = [r for _, r in named]
        labels = [name for name, _ in named][::-1]
        ax.barh(range(len(rows)), [_value(table, spec.values[0], r) for r in rows][::-1], color=BLUE, height=0.7)
        ax.set_yticks(range(len(rows)), labels, fontsize=6)
        _axis_format(ax, table, spec.values[0], "x")
        ax.grid(axis="x", color="#dddddd", linewidth=0.5)
    fig.tight_layout()
    return _png(fig, plt)


def _day_ticks(ax: Any, when: list[datetime]) -> None:
    """Whole days (every point at midnight UTC): ticks on days, labelled by date, at most about ten."""
    if not when or any((w.hour, w.minute, w.second) != (0, 0, 0) for w in when):
        return
    from matplotlib.dates import DateFormatter, DayLocator

    span = (max(when) - min(when)).days + 1
    ax.xaxis.set_major_locator(DayLocator(interval=max(1, -(-span // 10)), tz=UTC))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d", tz=UTC))  # type: ignore[no-untyped-call]


def _lines(ax: Any, table: Table, plan: FontPlan) -> None:
    """A line per group (the series' text columns), or the forecast band around its likely line."""
    spec = table.chart
    assert spec is not None
    x_i = table.column_index(spec.label)
    when = [datetime.fromtimestamp(int(r[x_i] or 0) // NS, UTC) for r in table.rows]
    if len(spec.values) == 3:  # conservative, likely, aggressive
        low, mid, high = ([_value(table, k, r) or 0.0 for r in table.rows] for k in spec.values)
        ax.fill_between(when, low, high, color=LIGHT, label="conservative - aggressive")
        ax.plot(when, mid, color=BLUE, label="likely")
        ax.legend(fontsize=6, frameon=False)
    else:
        keys = [i for i, c in enumerate(table.columns) if c.kind == "text" and i != x_i and c.key != "exactness"]
        groups: dict[tuple[str, ...], list[tuple[datetime, float]]] = {}
        for moment, row in zip(when, table.rows):
            value = _value(table, spec.values[0], row)
            groups.setdefault(tuple(str(row[i]) for i in keys), []).append((moment, value or 0.0))
        ranked = sorted(groups.items(), key=lambda kv: -sum(v for _, v in kv[1]))[:MAX_LINES]
        for key, points in ranked:
            ax.plot([p[0] for p in points], [p[1] for p in points], linewidth=1,
                    marker="o" if len(points) < 40 else None, markersize=2,
                    label=_label(plan, " / ".join(key)) if key else None)
        if keys:
            ax.legend(fontsize=6, frameon=False)
    ax.grid(axis="y", color="#dddddd", linewidth=0.5)
    _day_ticks(ax, when)
    for label in ax.get_xticklabels():
        label.set_rotation(20)
        label.set_horizontalalignment("right")


def heatmap_png(table: Table, plan: FontPlan, width_mm: float, height_mm: float) -> bytes | None:
    """Cost by day of week (rows) and hour of day (columns)."""
    if not table.rows:
        return None
    plt = _pyplot(plan)
    day_i, hour_i, cost_i = (table.column_index(k) for k in ("day_of_week", "hour", "cost_usd"))
    grid = [[0.0] * 24 for _ in _DAYS]
    for row in table.rows:
        grid[_DAYS.index(str(row[day_i]))][int(row[hour_i] or 0)] = float(from_pico(int(row[cost_i] or 0)))
    fig, ax = plt.subplots(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=DPI)
    image = ax.imshow(grid, aspect="auto", cmap="Blues")
    ax.set_yticks(range(7), _DAYS)
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_title("Cost by day of week and hour of day (USD)", fontsize=8, loc="left")
    bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
    _money_axis(bar.ax.yaxis, max(max(r) for r in grid))
    fig.tight_layout()
    return _png(fig, plt)
