"""A durable local spool of insert batches for the ClickHouse ledger.

A batch is a file of JSONEachRow lines written to a temporary name, fsynced, renamed to
`<token>.jsonl` and the directory fsynced: once `append` returns, a crash or a ClickHouse outage
loses nothing. The token (time-pid-sequence) is the batch's insert dedup token for its whole life,
so a batch sent again after a crash between "ClickHouse accepted" and "file deleted" is stored once.
Files of a process that died are claimed by the next shipper (renamed `<token>.<pid>.jsonl`).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from pathlib import Path

from genai_meter.ledger.urls import LedgerOpenError


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """One process's view of the spool directory (shared by the processes of one host)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerOpenError(f"{directory}: cannot create the ledger spool: {exc.strerror}") from None
        self.pid = os.getpid()
        self._seq = itertools.count()

    def append(self, lines: Sequence[str | bytes]) -> Path:
        """Write one batch durably; raises OSError (disk full, unwritable) with nothing half-visible."""
        token = f"{time.time_ns():020d}-{self.pid}-{next(self._seq)}"
        tmp = self.directory / f".{token}.tmp"
        final = self.directory / f"{token}.jsonl"
        body = b"".join((line if isinstance(line, bytes) else line.encode("utf-8")) + b"\n" for line in lines)
        try:
            with open(tmp, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
            _fsync_dir(self.directory)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        return final

    def probe(self) -> bool:
        """Whether a small file can be written durably here now (and is removed again)."""
        tmp = self.directory / f".probe-{self.pid}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
            return True
        except OSError:
            return False
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass

    @staticmethod
    def token(path: Path) -> str:
        return path.name.split(".", 1)[0]

    @staticmethod
    def owner(path: Path) -> int:
        parts = path.name.split(".")
        if len(parts) == 3:  # <token>.<pid>.jsonl: claimed
            return int(parts[1])
        return int(parts[0].split("-")[1])

    def pending(self) -> list[Path]:
        """This process's batches, oldest first, after claiming those of dead processes."""
        mine = []
        for path in sorted(self.directory.glob("*.jsonl")):
            try:
                owner = self.owner(path)
            except (ValueError, IndexError):
                continue
            if owner == self.pid:
                mine.append(path)
            elif not _alive(owner):
                claimed = self.directory / f"{self.token(path)}.{self.pid}.jsonl"
                try:
                    os.rename(path, claimed)  # atomic: one claimer wins
                except OSError:
                    continue
                mine.append(claimed)
        return sorted(mine)

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob("*.jsonl") if p.exists())
