"""Types of the optional C accelerator `_tally_params.c` (reference: tally_rows.params_pure)."""

from typing import Any

def params(taken: list[Any], heads: list[tuple[Any, ...]], /) -> list[tuple[Any, ...]] | None: ...
