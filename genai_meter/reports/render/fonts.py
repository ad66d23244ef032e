"""Fonts for PDF documents and their charts, chosen by the characters the document holds.

Searched in the system font folders (and `GENAI_METER_FONT_DIRS`, a path list): DejaVu Sans
(Debian `fonts-dejavu-core`: Latin, Greek, Cyrillic, Armenian, Georgian, Hebrew, Arabic letters, ...)
as the main font, Noto Sans CJK (`fonts-noto-cjk`: Chinese, Japanese, Korean) as a fallback added only
when the text needs it. `make fonts` installs both. A character no font found here covers is written
as `[U+XXXX]` (never `?`, so two names stay two names) and the document says so. With no Unicode
font at all, the core Helvetica (Latin-1) is used the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

SYSTEM_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
LATIN1 = frozenset(range(0x20, 0x7F)) | frozenset(range(0xA0, 0x100))


@dataclass(frozen=True, slots=True)
class Face:
    """A font family the documents can use: files, the face index in a collection, the name charts use."""

    family: str  # the name registered with fpdf2
    regular: str  # file name
    bold: str
    index: int  # face number in a .ttc collection
    chart_name: str  # the family name matplotlib knows it by


# In order of preference; the first one found is the main font, the others are fallbacks.
FACES: tuple[Face, ...] = (
    Face("dejavu", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", 0, "DejaVu Sans"),
    Face("notocjk", "NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc", 2, "Noto Sans CJK SC"),
)


def _dirs() -> list[Path]:
    extra = [p for p in os.environ.get("GENAI_METER_FONT_DIRS", "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in (*extra, *SYSTEM_DIRS)]


@cache
def find(file_name: str) -> Path | None:
    """The first file of that name under the font folders."""
    for root in _dirs():
        if root.is_dir():
            for path in root.rglob(file_name):
                return path
    return None


@cache
def coverage(path: Path, index: int) -> frozenset[int]:
    """The code points the font has glyphs for."""
    # fontTools (fpdf2's dependency) loads with the first PDF, not with the CLI
    from fontTools.ttLib import TTFont

    font = TTFont(str(path), fontNumber=index, lazy=True)
    try:
        return frozenset(font.getBestCmap())
    finally:
        font.close()


@dataclass(slots=True)
class FontPlan:
    """The fonts a document registers (main first) and the characters none of them covers."""

    faces: list[tuple[Face, Path, Path | None]]
    covered: frozenset[int]
    missing: set[str] = field(default_factory=set)  # known from the texts planned for, grows as `text` meets more

    @property
    def main(self) -> str:
        return self.faces[0][0].family if self.faces else "helvetica"

    @property
    def chart_families(self) -> list[str]:
        return [face.chart_name for face, _, _ in self.faces] or ["DejaVu Sans"]

    def text(self, value: str) -> str:
        """`value` with every character no font covers written as [U+XXXX] (and remembered)."""
        if all(ord(ch) in self.covered for ch in value):
            return value
        out = []
        for ch in value:
            if ord(ch) in self.covered:
                out.append(ch)
            else:
                self.missing.add(ch)
                out.append(f"[U+{ord(ch):04X}]")
        return "".join(out)


def plan(texts: Iterable[str]) -> FontPlan:
    """The main font, plus each fallback that covers a character of `texts` the fonts before it lack."""
    wanted = {ord(ch) for text in texts for ch in text}
    found = [(face, path, find(face.bold)) for face in FACES if (path := find(face.regular)) is not None]
    if not found:
        return FontPlan([], LATIN1, {chr(c) for c in wanted - LATIN1})
    main = found[0]
    covered = set(coverage(main[1], main[0].index))
    faces = [main]
    for face, path, bold in found[1:]:
        if wanted - covered:
            glyphs = coverage(path, face.index)
            if (wanted - covered) & glyphs:
                faces.append((face, path, bold))
                covered |= glyphs
    return FontPlan(faces, frozenset(covered), {chr(c) for c in wanted - covered})
