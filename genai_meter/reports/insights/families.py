"""Model families: which catalog models are the same family's smaller models (for savings advice).

A model id reads as a family plus a size tier. The tier is a word the providers use for the sizes of
one generation (opus > sonnet > haiku; pro > flash > flash-lite; large > medium > small; the plain
name > mini > nano; 405b > 70b > 8b parameters); the family is the id without that word and without a
date or version stamp. Two models are comparable when their families are equal: gpt-4o and
gpt-4o-mini, claude-sonnet-4-5 and claude-haiku-4-5, gemini-2.5-pro and gemini-2.5-flash,
llama-3.1-70b-instruct and llama-3.1-8b-instruct. Never across generations or lines (gpt-4o and
gpt-oss-20b, claude-sonnet-4-5 and claude-3-haiku).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Tier words, highest first within each ladder; a longer word is tried before its prefix (flash-lite, flash).
LADDERS: tuple[tuple[str, ...], ...] = (
    ("opus", "sonnet", "haiku"),
    ("ultra", "pro", "flash", "flash-lite"),
    ("large", "medium", "small", "tiny"),
)
SUFFIX_LADDER: tuple[str, ...] = ("", "mini", "nano")  # gpt-4.1, gpt-4.1-mini, gpt-4.1-nano
_STAMP = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest|-v\d+(:\d+)?|@\d+)$")
_PARAMS = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)b(?![a-z0-9])")
_UNSTABLE = ("preview", "exp", "experimental", "beta", "alpha")


@dataclass(frozen=True, slots=True)
class Size:
    """A model's family and its rank in the family (higher = larger)."""

    family: str
    rank: float


def _strip_stamp(model: str) -> str:
    text = model.lower()
    while (match := _STAMP.search(text)) is not None and match.start() > 0:
        text = text[:match.start()]
    return text


def size_of(model: str) -> Size:
    """The family and size rank of `model` (see the module docstring)."""
    text = _strip_stamp(model)
    params = _PARAMS.search(text)
    if params is not None:
        return Size(text[:params.start()] + "#" + text[params.end():], float(params.group(1)))
    parts = text.split("-")
    for ladder in LADDERS:
        for word in sorted(ladder, key=len, reverse=True):
            n = word.count("-") + 1
            for i in range(len(parts) - n + 1):
                if "-".join(parts[i:i + n]) == word:
                    family = "-".join(parts[:i] + ["#"] + parts[i + n:])
                    return Size(f"{ladder[0]}:{family}", float(len(ladder) - ladder.index(word)))
    if parts[-1] in SUFFIX_LADDER[1:]:
        return Size("-".join(parts[:-1]), float(len(SUFFIX_LADDER) - SUFFIX_LADDER.index(parts[-1])))
    return Size(text, float(len(SUFFIX_LADDER)))


def smaller_in_family(model: str, candidate: str) -> bool:
    """True when `candidate` is a smaller, stable model of `model`'s family."""
    if any(word in candidate.lower().split("-") for word in _UNSTABLE):
        return False
    mine, theirs = size_of(model), size_of(candidate)
    return mine.family == theirs.family and theirs.rank < mine.rank
