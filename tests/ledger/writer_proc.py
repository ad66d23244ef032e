"""A writer process for the ledger tests: `python -m tests.ledger.writer_proc URL FIRST COUNT BATCH [hold]`.

Writes entries FIRST..FIRST+COUNT-1 in batches, prints the number newly stored, then (with `hold`)
prints "committed" and sleeps until killed."""

from __future__ import annotations

import sys
import time

from genai_meter.config import Config
from genai_meter.ledger import open_writer
from tests.ledger.support import HOUR_NS, T0, entry


def main(argv: list[str]) -> int:
    url, first, count, batch = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    writer = open_writer(url, Config())
    new = 0
    futures = []
    for i in range(first, first + count, batch):
        chunk = range(i, min(i + batch, first + count))
        futures.append(writer.submit([entry(j, T0 + j * HOUR_NS // 7) for j in chunk]))
    for future in futures:
        new += sum(future.result(60))
    print(new, flush=True)
    if len(argv) > 4:
        print("committed", flush=True)
        time.sleep(60)
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
