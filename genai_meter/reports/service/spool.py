"""Exports written to a spool file first, then handed to the WSGI server as a file to send.

With waitress a worker thread that writes a streamed answer blocks once the connection's buffer
passes its high-water mark, so eight clients reading at 1 KiB/s held eight workers. Writing the
export to an unnamed temporary file at the ledger's speed and answering with `wsgi.file_wrapper`
hands the sending to waitress's main loop: the worker is free as soon as the file is written, however
slowly the client reads. The file's bytes count against the service's `SpoolBudget` until it is
closed (sent, or the client went away).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from flask import Response, request
from werkzeug.wsgi import wrap_file

from genai_meter.ledger import deadline
from genai_meter.reports.service.api import CSV, admit, service
from genai_meter.reports.service.limits import SpoolBudget
from genai_meter.reports.service.params import ApiError

BOM = "\ufeff".encode()
BLOCK = 256 * 1024  # bytes gathered before a write to the spool file


class SpooledExport:
    """A written export: a read-only binary file of `size` bytes that gives its budget back on close."""

    def __init__(self, file: IO[bytes], budget: SpoolBudget, size: int) -> None:
        self._file = file
        self._budget = budget
        self.size = size
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._file.close()
            self._budget.give_back(self.size)

    def __del__(self) -> None:
        self.close()


class SpoolUnwritable(ApiError):
    """The spool file could not be written (disk full, directory gone): 503."""

    status = 503


def spool(lines: Iterable[str | bytes], budget: SpoolBudget, directory: Path | None = None,
          bom: bool = False) -> SpooledExport:
    """Write `lines` (text as UTF-8, bytes as they are; after a BOM when asked) to an unnamed temporary file in
    `directory`.

    Raises `Busy` when the budget is spent, `QueryTimeout` past the request's deadline and
    `SpoolUnwritable` when the file cannot be written; the file is removed then."""
    try:
        file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (handed to the answer, which closes it)
    except OSError as exc:
        raise SpoolUnwritable(f"cannot write the export: {exc.strerror} (reports.limits.spool_dir); retry later") \
            from None
    size = 0
    pending: list[bytes] = [BOM] if bom else []
    gathered = len(BOM) if bom else 0
    try:
        for line in lines:
            data = line if isinstance(line, bytes) else line.encode()
            pending.append(data)
            gathered += len(data)
            if gathered >= BLOCK:
                budget.take(gathered)
                size += gathered
                file.write(b"".join(pending))
                pending, gathered = [], 0
                deadline.check()
        budget.take(gathered)
        size += gathered
        file.write(b"".join(pending))
        file.flush()
        file.seek(0)
    except OSError as exc:
        file.close()
        budget.give_back(size)
        raise SpoolUnwritable(f"cannot write the export: {exc.strerror} (reports.limits.spool_dir); retry later") \
            from None
    except BaseException:
        file.close()
        budget.give_back(size)
        raise
    return SpooledExport(file, budget, size)


def file_answer(export: SpooledExport, mimetype: str, filename: str) -> Response:
    """The answer that sends `export` (the server's file wrapper sends it; closing it frees its budget)."""
    response = Response(wrap_file(request.environ, export), mimetype=mimetype,  # type: ignore[arg-type]
                        direct_passthrough=True)
    response.headers["Content-Length"] = str(export.size)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_answer(lines: Iterable[str | bytes], filename: str, bom: bool, mimetype: str = CSV) -> Response:
    """An export admitted as heavy with the export time limit, written to a spool file, then sent from it."""
    svc = service()
    admit(export=True)
    limits = svc.limits.config
    directory = svc.config.resolve_path(limits.spool_dir) if limits.spool_dir is not None else None
    return file_answer(spool(lines, svc.limits.spool, directory, bom), mimetype, filename)
