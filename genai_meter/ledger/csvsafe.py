"""CSV cells safe to open in a spreadsheet (OWASP's rule against CSV injection), for every CSV genai-meter writes.

Labels come from spans, so a model, customer or conversation name can be a formula such as
`=HYPERLINK(...)`. A cell that starts with `=`, `+`, `-`, `@`, tab, CR or LF and is not a number gets a
leading single quote, which spreadsheets show as text; numbers such as `-0.5` stay as they are. The
report service's CSV answers and exports and `genai-meter ledger export --format csv` use `csv_cell`.
"""

from __future__ import annotations

import re

FORMULA_TRIGGERS = frozenset("=+-@\t\r\n")  # first characters that make a spreadsheet read a formula
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def csv_cell(text: str) -> str:
    """`text` safe in a spreadsheet: a leading `'` when it would start a formula and is not a number."""
    if text[:1] in FORMULA_TRIGGERS and not _NUMBER.fullmatch(text):
        return "'" + text
    return text
