"""`genai-meter ledger import FILE...`: historical spans loaded into the ledger in bulk.

The `ledger` subcommands (`ledger.command`) plus `import`, which needs the receiver's decoding and
the metering pipeline (a level above the ledger). Each file holds OTLP trace requests: protobuf
(`.pb`, `.binpb`, `.otlp`: one ExportTraceServiceRequest), JSON (`.json`: one request) or JSON lines
(`.jsonl`, `.ndjson`: one request per line, as the OpenTelemetry Collector's file exporter writes
them); any of them gzip-compressed (`.gz`). Spans go through the receiver's extraction and
`Meter.assess` (the same conventions, prices and checks as `serve`; end times before the ledger's
retention are refused) and are stored in batches of `BATCH` calls. A call stored before (a span
imported twice, or received live) is counted as a duplicate, never twice. Calls behind the rollup
watermark are held by each batch's commit and folded into the rollups in groups by the writer thread
(`ledger.sqlite_late`; the rest when the writer closes). Nothing is
recorded in Prometheus metrics: history belongs to the ledger's reports.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from genai_meter.collector_processor.metering.meter import Meter
from genai_meter.collector_processor.receiver.decode import MEDIA_JSON, MEDIA_PROTOBUF, BadRequest, decode
from genai_meter.collector_processor.receiver.spans import SpanExtractor
from genai_meter.config import Config
from genai_meter.conventions.times import EndTimes
from genai_meter.ledger import Entry, LedgerOpenError, LedgerUnavailable, open_writer, resolve_url
from genai_meter.ledger import command as ledger_command
from genai_meter.records import ToolCall

BATCH = 5000  # calls per group commit
JSON_SUFFIXES = (".json",)
LINES_SUFFIXES = (".jsonl", ".ndjson")
PROTOBUF_SUFFIXES = (".pb", ".binpb", ".otlp", ".bin")


@dataclass(slots=True)
class Imported:
    files: int = 0
    spans: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0  # not GenAI calls (or tool spans)
    rejected: int = 0  # refused by the receiver's checks (ids, end times)

    def line(self) -> str:
        return (f"imported {self.files} files: {self.spans} spans, {self.stored} calls stored, {self.duplicates} "
                f"already stored, {self.skipped} not calls, {self.rejected} refused")


def requests_of(path: Path) -> Iterator[tuple[bytes, str]]:
    """(body, media type) of every OTLP request in the file; ValueError naming the file if unknown."""
    name = path.name.lower()
    raw = path.read_bytes()
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
        name = name[:-3]
    if name.endswith(LINES_SUFFIXES):
        for line in raw.splitlines():
            if line.strip():
                yield line, MEDIA_JSON
    elif name.endswith(JSON_SUFFIXES):
        yield raw, MEDIA_JSON
    elif name.endswith(PROTOBUF_SUFFIXES):
        yield raw, MEDIA_PROTOBUF
    else:
        raise ValueError(f"{path}: not an OTLP file (expected .json, .jsonl, .ndjson, .pb, .binpb, .otlp, "
                         "optionally .gz)")


def import_files(url: str, config: Config, paths: list[Path]) -> Imported:
    """Store the calls of the spans in `paths` in the ledger at `url` (see the module docstring)."""
    meter = Meter(config, [])
    extractor = SpanExtractor(end_times=EndTimes.of(config, ledger=True))
    writer = open_writer(url, config)
    done = Imported()
    pending: list[Entry] = []

    def flush() -> None:
        if pending:
            flags = writer.submit(pending).result()
            done.stored += sum(flags)
            done.duplicates += len(flags) - sum(flags)
            pending.clear()

    try:
        for path in paths:
            for body, media in requests_of(path):
                try:
                    found = extractor.extract(decode(body, media).lean)
                except BadRequest as exc:
                    raise ValueError(f"{path}: {exc}") from None
                done.spans += found.received
                done.skipped += found.not_candidate
                done.rejected += sum(found.rejected.values())
                for record in found.candidates:
                    outcome = meter.assess(record)
                    if outcome is None or isinstance(outcome, (str, ToolCall)):
                        done.skipped += 1
                        continue
                    pending.append(Entry(*outcome))
                    if len(pending) >= BATCH:
                        flush()
            done.files += 1
        flush()
    finally:
        writer.close()
    return done


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `ledger` subcommands and `import`."""
    sub = ledger_command.add_arguments(parser)
    p = sub.add_parser("import", help="load historical spans (OTLP JSON, JSON lines or protobuf files) in bulk",
                       description="load historical spans (OTLP JSON, JSON lines or protobuf files) in bulk")
    p.add_argument("--ledger", metavar="URL", help="sqlite:///PATH or clickhouse://... (default: the data dir)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")


def run(args: argparse.Namespace, config: Config, out: IO[str] | None = None) -> int:
    if args.ledger_command != "import":
        return ledger_command.run(args, config, out)
    out = out or sys.stdout
    try:
        url = resolve_url(config, args.ledger)
        if url is None:
            raise ValueError("--ledger: the ledger is off (none); give a ledger URL")
        missing = [p for p in args.files if not p.is_file()]
        if missing:
            raise ValueError(f"{missing[0]}: no such file")
        print(import_files(url, config, list(args.files)).line(), file=out)
        return 0
    except (ValueError, LedgerOpenError, OSError) as exc:
        print(f"genai-meter ledger import: {exc}", file=sys.stderr)
        return 2
    except LedgerUnavailable as exc:
        print(f"genai-meter ledger import: {exc}", file=sys.stderr)
        return 1
