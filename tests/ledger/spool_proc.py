"""A process that spools calls for a ClickHouse that is down, prints "spooled" and waits to be killed:
`python -m tests.ledger.spool_proc SPOOL_DIR COUNT`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from genai_meter.config import Config
from genai_meter.ledger.clickhouse_exec import Executor
from genai_meter.ledger.clickhouse_writer import ClickHouseWriter
from genai_meter.ledger.model import LedgerUnavailable
from tests.ledger.support import T0, entry


def _down() -> Executor:
    raise LedgerUnavailable("ClickHouse: connection refused (test)")


def main(argv: list[str]) -> int:
    writer = ClickHouseWriter(_down, "unused", Config(), Path(argv[0]))
    flags = writer.submit([entry(i, T0 + i * 10**9) for i in range(int(argv[1]))]).result(10)
    print(sum(flags), flush=True)
    print("spooled", flush=True)
    time.sleep(60)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
