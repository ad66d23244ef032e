"""`serve --workers N`: N receiving processes, one /metrics, totals exact (docs/scaling.md).

Python runs one thread of bytecode at a time, so one process uses one core. With N > 1 workers:

* each worker process runs the OTLP/HTTP and OTLP/gRPC listeners on the *same* ports
  (SO_REUSEPORT: the kernel spreads connections over the workers), and decodes, meters and prices
  its requests into its own `UsageMetrics`, synchronously, before answering, as a single process;
* dedup stays exact across workers: the parent holds the one `SeenSpans` set, and each worker
  claims a request's candidate keys in one pipe round trip (~50 µs), settling them once counted;
* the parent serves /metrics: per scrape it collects every worker's `families()` snapshot and sums
  them series by series (counters and histograms add, gauges take the maximum), so Prometheus sees
  one target with exactly the series a single process would export;
* a worker that dies is restarted; its figures as of the last scrape stay in the sum (so counters
  never go backwards), so a crash loses at most what that worker counted since the last scrape.

Per-worker label caps apply per worker: a label value folded into `__overflow__` by one worker may
be kept by another (totals stay exact). Connections, not requests, are balanced: a client with one
keep-alive connection (one OTel SDK exporter, one gRPC channel) lands on one worker.

Protocol: each worker has two pipes to the parent. `dedup`: an op byte (claim, settle, release)
and the concatenated 24-byte keys; only a claim is answered, one byte per key (1 = new, now
claimed by this worker). `control`: messages `(request id, op, arg)` from the parent (`ping`,
`render`, `drain`, `exit`) answered with `(request id, result)`; id 0 carries the worker's
unsolicited `("ready", addresses)` or `("error", text)`. The answer to `ping` (each second) says
whether the worker's ledger can write: /readyz is 503 while one cannot. The worker side is
receiver.worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from genai_meter import contract
from genai_meter.collector_processor.receiver.dedup import SeenSpans
from genai_meter.collector_processor.receiver.lifecycle import (
    ScrapeWatch,
    ShutdownSignals,
    final_scrape,
    log_listening,
)
from genai_meter.collector_processor.receiver.worker import CLAIM, KEY_BYTES, PONG_LEDGER_DOWN, SETTLE, worker_main
from genai_meter.config import Config
from genai_meter.exporters.endpoint import start_metrics_server
from genai_meter.exporters.families import FamilyData
from genai_meter.exporters.httpd import HttpServer, format_address, parse_listen
from genai_meter.exporters.merge import merge_families, render_families
from genai_meter.exporters.store import SELF_GAUGES

log = logging.getLogger("genai_meter")

WORKER_START_TIMEOUT_S = 60.0
RENDER_TIMEOUT_S = 1.0  # a worker that does not answer a scrape within this shows its last figures
FIRST_RENDER_TIMEOUT_S = 5.0  # the same for a worker that has no figures to show yet
PING_INTERVAL_S = 1.0  # how often the parent checks that each worker answers
HUNG_AFTER_S = 5.0  # a worker silent for this long is killed and restarted
RESTART_BACKOFF_S = 1.0


# ---------------------------------------------------------------------------------------------
# Parent side


class WorkerLink:
    """The parent's handle on one worker process: its control RPC and dedup service threads."""

    def __init__(self, ctx: Any, config: Config, slot: int, seen: SeenSpans) -> None:
        self.slot = slot
        parent_dedup, child_dedup = ctx.Pipe(duplex=True)
        parent_control, child_control = ctx.Pipe(duplex=True)
        level = logging.getLevelName(log.getEffectiveLevel())
        self.process = ctx.Process(target=worker_main, args=(config, slot, child_dedup, child_control, level),
                                   name=f"genai-meter-worker-{slot}", daemon=True)
        self._dedup = parent_dedup
        self._control = parent_control
        self._children = (child_dedup, child_control)
        self._seen = seen
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[Any]] = {}
        self._next_id = 1
        self.ready: Future[dict[str, str]] = Future()
        self.last_families: list[FamilyData] | None = None  # from the last scrape, kept if the worker dies
        self.last_pong = 0.0  # monotonic time of the last answered ping (0: none yet)
        self.ledger_ready = True  # the worker's ledger could write at its last answered ping

    def pong(self, future: Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.last_pong = time.monotonic()
            self.ledger_ready = future.result() != PONG_LEDGER_DOWN

    def start(self) -> None:
        self.last_pong = time.monotonic()
        self.process.start()
        for conn in self._children:
            conn.close()
        threading.Thread(target=self._serve_dedup, name=f"genai-meter-dedup-{self.slot}", daemon=True).start()
        threading.Thread(target=self._read_control, name=f"genai-meter-control-{self.slot}", daemon=True).start()

    def _serve_dedup(self) -> None:
        """Answer this worker's dedup messages; when it dies, release the claims it still held (its
        requests were never answered 200, so their clients retry and must be counted)."""
        conn, seen = self._dedup, self._seen
        held: set[bytes] = set()
        try:
            while True:
                try:
                    data = conn.recv_bytes()
                except (EOFError, OSError):
                    return
                op = data[:1]
                keys = [data[i:i + KEY_BYTES] for i in range(1, len(data), KEY_BYTES)]
                if op == CLAIM:
                    fresh = seen.claim(keys)
                    held.update(key for key, new in zip(keys, fresh) if new)
                    try:
                        conn.send_bytes(bytes(fresh))
                    except OSError:
                        return
                else:
                    held.difference_update(keys)
                    (seen.settle if op == SETTLE else seen.release)(keys)
        finally:
            if held:
                seen.release(list(held))

    def _read_control(self) -> None:
        while True:
            try:
                request_id, result = self._control.recv()
            except (EOFError, OSError):
                break
            if request_id == 0:
                kind, value = result
                if kind == "ready":
                    self.ready.set_result(value)
                elif not self.ready.done():
                    self.ready.set_exception(RuntimeError(value))
                continue
            future = self._pending.pop(request_id, None)
            if future is not None:
                future.set_result(result)
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"worker {self.slot} exited during start-up"))
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(EOFError("worker gone"))
        self._pending.clear()

    def ask(self, op: str, arg: Any = None) -> Future[Any]:
        """Send `op` to the worker; the Future holds its answer (EOFError when the worker is gone)."""
        future: Future[Any] = Future()
        with self._send_lock:
            request_id = self._next_id
            self._next_id += 1
            self._pending[request_id] = future
            try:
                self._control.send((request_id, op, arg))
            except OSError:
                self._pending.pop(request_id, None)
                future.set_exception(EOFError("worker gone"))
        return future

    def call(self, op: str, arg: Any = None, timeout: float = RENDER_TIMEOUT_S) -> Any:
        """Ask the worker; raises TimeoutError, EOFError (worker gone) or the worker's exception."""
        future = self.ask(op, arg)
        try:
            result = future.result(timeout)
        except FutureTimeout:
            raise TimeoutError(f"worker {self.slot} did not answer {op!r} within {timeout:.0f} s") from None
        if isinstance(result, Exception):
            raise result
        return result

    def close(self) -> None:
        for conn in (self._dedup, self._control):
            try:
                conn.close()
            except OSError:
                pass


def unresponsive_family(count: int) -> FamilyData:
    """genai_meter_workers_unresponsive as the parent sees it in this scrape."""
    return FamilyData("gauge", contract.SELF_WORKERS_UNRESPONSIVE, SELF_GAUGES[contract.SELF_WORKERS_UNRESPONSIVE][1],
                      "", (), [()], [count])


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound (not listening) SO_REUSEPORT socket holding `port` (an ephemeral one for 0) for the
    workers to share; it never accepts connections."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    return sock


class Supervisor:
    """The parent of `serve --workers N`: ports, dedup, /metrics, lifecycle."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.n = config.server.workers
        self.seen = SeenSpans(config.limits.dedup_window_seconds, config.limits.dedup_max_entries)
        self.signals = ShutdownSignals()
        self.watch = ScrapeWatch()
        self._ctx = multiprocessing.get_context("spawn")
        self._links: list[WorkerLink] = []
        self._tombstones: list[list[Any]] = []  # last figures of workers that died
        self._reserved: list[socket.socket] = []
        self._state_lock = threading.Lock()
        self._ready = False
        self._stopping = False
        self.metrics_server: HttpServer | None = None
        self._worker_config = config

    # -- /metrics ---------------------------------------------------------------------------

    def ready(self) -> bool:
        """/readyz: workers started, not shutting down, every worker's ledger able to write (as of its last ping)."""
        return self._ready and not self._stopping and all(link.ledger_ready for link in self._links)

    def render(self, openmetrics: bool) -> bytes:
        """Every worker's figures summed, within RENDER_TIMEOUT_S whatever the workers do: a worker
        that does not answer in time contributes its last figures and is counted as unresponsive."""
        with self._state_lock:
            links = list(self._links)
            sources: list[Sequence[FamilyData]] = list(self._tombstones)
        asked = [(link, link.ask("render")) for link in links]
        started = time.monotonic()
        unresponsive = 0
        for link, future in asked:
            # a worker with no figures yet gets longer: there is nothing to show in its place
            bound = RENDER_TIMEOUT_S if link.last_families is not None else FIRST_RENDER_TIMEOUT_S
            try:
                families = future.result(max(0.0, started + bound - time.monotonic()))
                if isinstance(families, Exception):
                    raise families
                link.last_families = families
            except (FutureTimeout, EOFError, OSError) as exc:
                unresponsive += 1
                log.warning("genai-meter: worker %d shows its last figures in this scrape: %s",
                            link.slot, exc or "no answer in time")
                families = link.last_families or []
            sources.append(families)
        sources.append([unresponsive_family(unresponsive)])
        return render_families(merge_families(sources), openmetrics)

    # -- lifecycle --------------------------------------------------------------------------

    def _spawn(self, slot: int) -> WorkerLink:
        link = WorkerLink(self._ctx, self._worker_config, slot, self.seen)
        link.start()
        return link

    def start(self) -> None:
        server = self.config.server
        update: dict[str, Any] = {}
        for name in ("grpc_listen", "http_listen"):
            host, port = parse_listen(getattr(server, name))
            sock = reserve_port(host, port)
            self._reserved.append(sock)
            update[name] = format_address(host, sock.getsockname()[1])
        self._worker_config = self.config.model_copy(
            update={"server": server.model_copy(update={**update, "workers": 1})})
        self.metrics_server = start_metrics_server(self, server.metrics_listen, ready=self.ready,
                                                   on_scrape=self.watch.on_scrape)
        host, _ = parse_listen(server.metrics_listen)
        log_listening("metrics", format_address(host, self.metrics_server.address[1]))
        self._links = [self._spawn(slot) for slot in range(self.n)]
        addresses: dict[str, str] = {}
        for link in self._links:
            addresses = link.ready.result(WORKER_START_TIMEOUT_S)
        for name in ("otlp-grpc", "otlp-http"):
            log_listening(name, addresses[name])
        log.info("genai-meter: %d workers (pids %s)", self.n, ", ".join(str(link.process.pid) for link in self._links))
        self._ready = True
        threading.Thread(target=self._watch_workers, name="genai-meter-supervisor", daemon=True).start()
        log.info("genai-meter: ready")

    def _watch_workers(self) -> None:
        next_ping = time.monotonic()
        while not self._stopping:
            time.sleep(0.2)
            if time.monotonic() >= next_ping:
                next_ping = time.monotonic() + PING_INTERVAL_S
                self._kill_hung()
            for i, link in enumerate(list(self._links)):
                if self._stopping or link.process.is_alive():
                    continue
                log.error("genai-meter: worker %d (pid %s) exited with %s; restarting it",
                          link.slot, link.process.pid, link.process.exitcode)
                link.close()
                time.sleep(RESTART_BACKOFF_S)
                if self._stopping:
                    return
                replacement = self._spawn(link.slot)
                with self._state_lock:
                    if link.last_families:
                        self._tombstones.append(link.last_families)
                    self._links[i] = replacement
                try:
                    replacement.ready.result(WORKER_START_TIMEOUT_S)
                except Exception as exc:
                    log.error("genai-meter: worker %d did not restart: %s", link.slot, exc)

    def _kill_hung(self) -> None:
        """Ping every worker; kill one that has not answered for HUNG_AFTER_S (stopped, deadlocked):
        it would hold its share of new connections forever. The watch loop then restarts it."""
        now = time.monotonic()
        for link in list(self._links):
            if link.last_pong and now - link.last_pong > HUNG_AFTER_S and link.process.is_alive():
                log.error("genai-meter: worker %d (pid %s) has not answered for %.0f s; killing it",
                          link.slot, link.process.pid, now - link.last_pong)
                link.process.kill()
                continue
            link.ask("ping").add_done_callback(link.pong)

    def run(self) -> int:
        self.signals.install()  # before "ready" is logged (workers are spawned and ignore both signals)
        try:
            self.start()
        except Exception as exc:
            log.error("genai-meter: cannot start: %s", exc)
            self._stopping = True
            self._terminate_workers()
            if self.metrics_server is not None:
                self.metrics_server.stop(1.0)
            return 1
        self.signals.stop.wait()
        return self.shutdown()

    def shutdown(self) -> int:
        self._stopping = True
        bound = self.config.server.request_timeout_seconds
        results = []
        for link in self._links:
            future: Future[Any] = Future()
            threading.Thread(target=_call_into, args=(future, link, "drain", bound * 2 + 5), daemon=True).start()
            results.append(future)
        for future in results:
            try:
                future.result(bound * 2 + 10)
            except Exception as exc:
                log.warning("genai-meter: a worker did not drain cleanly: %s", exc)
        counted_until = time.monotonic()
        final_scrape(self.watch, counted_until, self.config.server.shutdown_scrape_wait_seconds, self.signals.hurry)
        if self.metrics_server is not None:
            self.metrics_server.stop(2.0)
        self._terminate_workers()
        for sock in self._reserved:
            sock.close()
        log.info("genai-meter: stopped")
        return 0

    def _terminate_workers(self) -> None:
        for link in self._links:
            try:
                link.call("exit", timeout=10.0)
            except Exception:
                pass
        for link in self._links:
            link.process.join(5.0)
            if link.process.is_alive():
                link.process.kill()
                link.process.join(2.0)
            link.close()


def _call_into(future: Future[Any], link: WorkerLink, op: str, timeout: float) -> None:
    try:
        future.set_result(link.call(op, timeout=timeout))
    except BaseException as exc:
        future.set_exception(exc)
