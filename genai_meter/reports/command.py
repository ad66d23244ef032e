"""`genai-meter reports [--config FILE] [--ledger URL] [--listen HOST:PORT]`: serve the report service.

Opens the ledger read-only (refuses to start when it does not exist), refuses to bind beyond
loopback with no tokens configured, starts the schedules and serves with waitress until SIGTERM/SIGINT.
Waitress gets a worker thread for every heavy request running or queued plus some for light ones
(`ReportsConfig.worker_threads`), so health never waits behind reports.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

from waitress.server import create_server

from genai_meter.config import LIGHT_THREADS, Config, ConfigError, ReportTokenConfig
from genai_meter.ledger import LedgerOpenError, LedgerUnavailable, open_reader, resolve_url
from genai_meter.ledger.urls import data_dir, describe, sqlite_path
from genai_meter.pricing import PriceBook
from genai_meter.reports import web
from genai_meter.reports.schedules.produce import produce
from genai_meter.reports.schedules.scheduler import Scheduler, ScheduleState, validate
from genai_meter.reports.service.api import EXTENSION, Service
from genai_meter.reports.service.app import create_app
from genai_meter.reports.service.ranges import report_offset
from genai_meter.reports.service.readers import PerThreadReader
from genai_meter.reports.service.scopes import load_tokens, state_path_default

log = logging.getLogger("genai_meter.reports")
STOP_WAIT_S = 5.0  # on SIGTERM: how long running answers may take to finish before the server closes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's own flags (`--config` is added by the CLI)."""
    parser.add_argument("--ledger", metavar="URL", default=None,
                        help="ledger URL (sqlite:///PATH or clickhouse://...); default: ledger.url or the data dir")
    parser.add_argument("--listen", metavar="HOST:PORT", default=None,
                        help="address to serve on (default: reports.listen, 127.0.0.1:8080)")


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) -> (host, port); raises ValueError naming the flag."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ValueError(f"--listen: expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def state_file(config: Config, url: str) -> Path:
    """The schedule state file: reports.state_file, else beside a SQLite ledger, else in the data dir."""
    if config.reports.state_file is not None:
        return config.resolve_path(config.reports.state_file)
    path = sqlite_path(url)
    if path is not None:
        return state_path_default(path)
    return data_dir(config) / "reports-state.db"


def check_fields(config: Config, tokens: list[ReportTokenConfig], fields: tuple[str, ...]) -> None:
    """Raise ValueError naming a token scope or schedule that uses a field this ledger does not have."""
    known = set(fields)
    for token in tokens:
        for name in token.scope:
            if name not in known:
                raise ValueError(f"reports.tokens[{token.name or token.sha256[:8]}].scope: unknown field {name!r} "
                                 f"(known: {', '.join(fields)})")
    for schedule in config.reports.schedules:
        for name in [*schedule.filters, *schedule.scope, *schedule.group_by]:
            if name not in known:
                raise ValueError(f"reports.schedules[{schedule.name}]: unknown field {name!r} "
                                 f"(known: {', '.join(fields)})")


def check_spool_dir(config: Config) -> None:
    """Raise ValueError naming `reports.limits.spool_dir` when exports cannot be written there."""
    if config.reports.limits.spool_dir is None:
        return
    folder = config.resolve_path(config.reports.limits.spool_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ValueError(f"reports.limits.spool_dir: cannot write in {folder}: {exc.strerror}") from None


def run(args: argparse.Namespace, config: Config) -> int:
    """Serve until stopped; 0 on a clean stop, 2 on a configuration or startup error (stderr says why)."""
    try:
        host, port = parse_listen(args.listen or config.reports.listen)
        tokens = load_tokens(config)
        if not tokens and not is_loopback(host):
            raise ValueError(f"--listen {host}:{port}: refusing to serve beyond loopback with no tokens configured "
                             "(add reports.tokens or reports.tokens_file)")
        validate(config)
        check_spool_dir(config)
        url = resolve_url(config, args.ledger)
        if url is None:
            raise ValueError("--ledger none: the report service needs a ledger")
        path = sqlite_path(url)
        if path is not None and not path.is_file():
            raise ValueError(f"ledger {path.absolute()} does not exist (run `genai-meter serve` first, or pass "
                             "--ledger)")
        limits = config.reports.limits
        reader = PerThreadReader(lambda: open_reader(url, config, interruptible=True),
                                 keep=limits.heavy_concurrent + LIGHT_THREADS)
        try:
            check_fields(config, tokens, reader.fields())
        except ValueError:
            reader.close()
            raise
    except (ValueError, ConfigError, OSError, LedgerOpenError, LedgerUnavailable) as exc:
        print(f"genai-meter reports: {exc}", file=sys.stderr)
        return 2
    book = PriceBook.from_config(config)
    state = ScheduleState(state_file(config, url), time.time_ns(), config.reports.schedules) \
        if config.reports.schedules else None
    app = create_app(config, reader, book=book, schedule_status=state.status if state else list, page=web.bp,
                     listen_host=host, ledger_url=url)
    try:
        server = create_server(app, host=host, port=port, threads=config.reports.worker_threads, ident="genai-meter")
    except OSError as exc:
        for closing in (reader, book, state):
            if closing is not None:
                closing.close()
        print(f"genai-meter reports: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 2
    scheduler = None
    if state is not None:
        svc = app.extensions[EXTENSION]
        assert isinstance(svc, Service)
        scheduler = Scheduler(config, state, lambda s, slot: produce(svc, s, slot), report_offset(config),
                              time.time_ns)
        scheduler.start()
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        # the worker threads finish their answers first (a bounded wait): closing the server under a running
        # one closed the pipe it wakes the server with, and it died with a traceback
        server.task_dispatcher.shutdown(timeout=STOP_WAIT_S)
        server.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    where = path.absolute() if path is not None else describe(url)
    print(f"genai-meter reports: serving http://{host}:{server.effective_port}/ (API under /api/v1/; ledger {where}, "
          f"{len(tokens)} token(s), {len(config.reports.schedules)} schedule(s))", flush=True)
    try:
        server.run()
    except (OSError, ValueError):
        if not stopping.is_set():
            raise
    finally:
        if scheduler is not None:
            scheduler.stop()
        if state is not None:
            state.close()
        reader.close()
        book.close()
    return 0
