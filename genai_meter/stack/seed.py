"""The demo's ledger: ~30 days of synthetic history written before live traffic starts, and the
ledger's totals for the exit summary.

The history (`genai_meter.reports.web.history`) is clearly marked synthetic: services `synthetic-*`,
environment `synthetic`. It is written once per ledger: a ledger that already holds synthetic calls
(a `--dir` reused) is left as it is. Live demo calls are everything else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from genai_meter.config import Config
from genai_meter.ledger import LedgerOpenError, LedgerUnavailable, open_reader, open_writer
from genai_meter.reports.web.history import SYNTHETIC_ENVIRONMENT, synthetic_history

HISTORY_DAYS = 30
SEED = 1
CHUNK = 2000  # entries per submission: one group commit each
NS = 10**9
_EVER = (0, 2**63 - 1)  # [start, end) that holds every call


def has_synthetic(url: str, config: Config) -> bool:
    """True when the ledger at `url` holds synthetic calls already."""
    reader = open_reader(url, config)
    try:
        return reader.totals(*_EVER, {"environment": [SYNTHETIC_ENVIRONMENT]})[0].calls > 0
    finally:
        reader.close()


def seed_history(url: str, config: Config, days: int = HISTORY_DAYS, now_ns: int | None = None,
                 timeout_s: float = 60.0) -> int:
    """Write `days` of synthetic history ending at `now_ns` into the ledger at `url` (created when
    missing) unless it holds some already; returns the number of calls written (0 when skipped).
    Raises RuntimeError when the ledger cannot be written."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    try:
        writer = open_writer(url, config)  # creates and migrates
    except (LedgerOpenError, LedgerUnavailable, OSError, ValueError) as exc:
        raise RuntimeError(f"the demo ledger {url}: {exc}") from None
    try:
        if has_synthetic(url, config):
            return 0
        entries = synthetic_history(config, days, now_ns, SEED)
        deadline = time.monotonic() + timeout_s
        futures = [writer.submit(entries[i:i + CHUNK]) for i in range(0, len(entries), CHUNK)]
        written = 0
        for future in futures:
            written += sum(future.result(timeout=max(0.1, deadline - time.monotonic())))
        return written
    except (LedgerUnavailable, TimeoutError) as exc:
        raise RuntimeError(f"the demo ledger {url}: writing the synthetic history failed: {exc}") from None
    finally:
        writer.close()


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """What the ledger holds: live calls (of this run) and their cost (10^-12 USD), and synthetic history calls."""

    live_calls: int
    live_cost_pico: int
    synthetic_calls: int


def ledger_totals(url: str, config: Config, live_since_ns: int = 0) -> LedgerTotals | None:
    """The ledger's totals: live calls ending at or after `live_since_ns` (a `--dir` reused keeps
    earlier runs' calls) and all synthetic ones; None when it cannot be read."""
    try:
        reader = open_reader(url, config)
    except (LedgerOpenError, LedgerUnavailable, OSError, ValueError):
        return None
    try:
        groups = reader.totals(*_EVER, {"environment": [SYNTHETIC_ENVIRONMENT]})
        live = [t for t in reader.totals(live_since_ns, _EVER[1], {}, ("environment",))
                if t.key != (SYNTHETIC_ENVIRONMENT,)]
    except (LedgerUnavailable, OSError, ValueError):
        return None
    finally:
        reader.close()
    return LedgerTotals(sum(t.calls for t in live), sum(t.cost_total_pico for t in live), groups[0].calls)
