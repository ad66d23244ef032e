"""Grid placement: panels flow left to right in rows of 24 columns; ids follow placement order.

Deterministic by construction (same panels in, same ids and positions out), so generated
dashboards are byte-stable and no two panels overlap.
"""

from __future__ import annotations

import attr
from grafanalib.core import GridPos, Panel

from genai_meter.dashboards.panels import RowHeader

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

    def _assign(self, panel: Panel, w: int, h: int) -> Panel:
        placed = attr.evolve(panel, gridPos=GridPos(h=h, w=w, x=self._x, y=self._y), id=self._next_id)
        self._next_id += 1
        self.panels.append(placed)
        return placed

    def row(self, title: str) -> None:
        """Start a new row with a title bar."""
        self._newline()
        self._assign(RowHeader(title=title), WIDTH, 1)
        self._y += 1

    def add(self, panel: Panel, w: int, h: int) -> None:
        """Place `panel` (w columns by h units) after the previous one, wrapping at 24 columns."""
        if not 0 < w <= WIDTH:
            raise ValueError(f"panel width {w} outside 1..{WIDTH}")
        if self._x + w > WIDTH:
            self._newline()
        self._assign(panel, w, h)
        self._x += w
        self._row_height = max(self._row_height, h)
        if self._x == WIDTH:
            self._newline()

