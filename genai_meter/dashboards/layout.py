"""Grid placement: panels flow left to right in rows of 24 columns; ids follow placement order.

Deterministic by construction (same panels in, same ids and positions out), so generated
dashboards are byte-stable and no two panels overlap.
"""

from __future__ import annotations

import attr
from grafanalib.core import GridPos, Panel

from genai_meter.dashboards.panels import RowHeader
from genai_meter.promql.links import FIRST_LINKED_ID, PanelRef

# Said by every panel that reads the 15-minute rollups (they lag the raw counters by up to 15 min).
ROLLUP_NOTE = "As of the last rollup (<= 15 min)."

WIDTH = 24


class Layout:
    """Collects panels with sizes and assigns `gridPos` and `id` to each."""

    def __init__(self) -> None:
        self.panels: list[Panel] = []
        self._x = 0
        self._y = 0
        self._row_height = 0
        self._next_id = 1

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_height
            self._x = 0
            self._row_height = 0

    def _assign(self, panel: Panel, w: int, h: int, panel_id: int | None = None) -> Panel:
        if panel_id is None:
            panel_id = self._next_id
            self._next_id += 1
            if panel_id >= FIRST_LINKED_ID:
                raise ValueError(f"more than {FIRST_LINKED_ID - 1} panels: ids would reach the linked ones")
        placed = attr.evolve(panel, gridPos=GridPos(h=h, w=w, x=self._x, y=self._y), id=panel_id)
        self.panels.append(placed)
        return placed

    def row(self, title: str) -> None:
        """Start a new row with a title bar."""
        self._newline()
        self._assign(RowHeader(title=title), WIDTH, 1)
        self._y += 1

    def add(self, panel: Panel, w: int, h: int, link: PanelRef | None = None) -> None:
        """Place `panel` (w columns by h units) after the previous one, wrapping at 24 columns.

        A panel that alerts link to (`link`) keeps the fixed id of that reference. A panel reading the
        15-minute rollups says so in its description.
        """
        if not 0 < w <= WIDTH:
            raise ValueError(f"panel width {w} outside 1..{WIDTH}")
        if self._x + w > WIDTH:
            self._newline()
        if any(":increase15m" in t.expr for t in panel.targets) and ROLLUP_NOTE not in (panel.description or ""):
            panel = attr.evolve(panel, description=f"{panel.description or ''} {ROLLUP_NOTE}".strip())
        self._assign(panel, w, h, link.panel_id if link else None)
        self._x += w
        self._row_height = max(self._row_height, h)
        if self._x == WIDTH:
            self._newline()

