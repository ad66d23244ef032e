"""The OTLP receiver end to end: a real `genai-meter serve` loaded over OTLP/HTTP and OTLP/gRPC.

The load generator posts prebuilt bodies of 512 spans (benchmarks.otlp_bodies: a fresh stamp in
every trace id per request, so dedup drops nothing) from several keep-alive connections for a
bounded time per scenario. The server's throughput is the spans it answered 200/OK for, per
second of wall time, and per CPU-second of the server process (utime + stime of all its threads
from /proc/PID/stat, before and after): "per core", independent of how busy the client kept it.

References measured in the same run, on the same bodies, in this process:
* parse floor: `ExportTraceServiceRequest.FromString` alone (upb), spans/s;
* naive receiver: parse with the generated classes, dict the attributes, update prometheus_client
  Counters with labels (what a straightforward Python receiver does), spans/s.
The load runs in slices, each preceded by a run of both references: the shared machine's speed
drifts by tens of percent within seconds, and the ratios then compare like with like.

Visibility: one LLM span with a fresh customer is posted, and /metrics polled until its cost
shows; measured idle and while the all-LLM HTTP load runs.

Targets (docs/performance.md): OTLP/HTTP >= 100k spans/s per core, OTLP/gRPC >= 60k spans/s per
core, cost visible <= 1000 ms after receipt. The server runs on 127.0.0.1 ephemeral ports and is
stopped by PID at the end of each scenario.
"""

from __future__ import annotations

import gc
import http.client
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import report
from benchmarks.otlp_bodies import SPANS_PER_REQUEST, Stamper, template_body

REPO = Path(__file__).resolve().parents[1]
SERVE_TREE = Path(os.environ.get("BENCH_SERVE_TREE", REPO))  # the tree whose `genai_meter` is served (a baseline)
SCENARIO_S = float(os.environ.get("BENCH_SCENARIO_SECONDS", "5"))
SLICES = 5  # the load runs in slices, each after a run of the references
REFERENCE_BODIES = 8  # bodies the references parse / count per slice
WARMUP_S = 1.0
HTTP_CONNECTIONS = 4
GRPC_CHANNELS = 4
START_TIMEOUT_S = 30.0
GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
HTTP_TARGET_PER_CORE = 100_000
GRPC_TARGET_PER_CORE = 60_000
VISIBILITY_TARGET_MS = 1000.0
_LISTENING = re.compile(r"genai-meter: (\S+) listening on (\S+)")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# The server under test


@dataclass
class Server:
    process: subprocess.Popen
    addresses: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        """utime + stime of the process and of every process below it (all threads), from /proc."""
        return tree_cpu_seconds(self.process.pid)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM by PID (the config turns the shutdown scrape wait off), SIGKILL after `timeout`."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rsplit(")", 1)[1].split()


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of `root` and its live descendants (stat(5) fields 14, 15; parent is field 4),
    plus what reaped children left in cutime/cstime: every process of a `serve` counts."""
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = _stat(int(entry))
            except OSError:  # gone meanwhile
                pass
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        fields = stats.get(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        todo.extend(children.get(pid, ()))
    return total / _CLK_TCK


def start_reference(mode: str) -> Server:
    """A reference gRPC server (benchmarks.grpc_reference: `null` or `naive`) on an ephemeral port."""
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.grpc_reference", mode], cwd=REPO,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    server = Server(process)
    if not line.startswith("listening on "):
        server.stop(5)
        raise RuntimeError(f"the {mode} gRPC reference did not start: {line}")
    server.addresses["otlp-grpc"] = line.split()[-1]
    return server


def start_server(config_dir: Path, ledger: str = "none", path: str = "accelerated") -> Server:
    """`genai-meter serve` on ephemeral 127.0.0.1 ports; returns once it logged `ready`. `ledger`:
    "none" (metrics only, the pre-ledger figures) or "on" (SQLite in `config_dir`, the default setup);
    `path`: "accelerated" (the C accelerator, when built) or "pure" (GENAI_METER_ACCELERATOR=off)."""
    config = config_dir / "bench.yaml"
    config.write_text("server:\n  shutdown_scrape_wait_seconds: 0\n", encoding="utf-8")
    args = [sys.executable, "-m", "genai_meter", "serve", "--config", str(config),
            "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
            "--ledger", "none" if ledger == "none" else f"sqlite:///{config_dir / 'ledger.db'}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("GENAI_METER_CONFIG", None)
    if path == "pure":
        env["GENAI_METER_ACCELERATOR"] = "off"
    process = subprocess.Popen(args, cwd=SERVE_TREE, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    server = Server(process)
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.lines.append(line)
            match = _LISTENING.search(line)
            if match:
                server.addresses[match.group(1)] = match.group(2)
            if "genai-meter: ready" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(START_TIMEOUT_S) or process.poll() is not None:
        server.stop(5)
        raise RuntimeError("genai-meter serve did not start:\n" + "".join(server.lines))
    return server


def _http_connection(address: str, timeout: float = 30.0) -> http.client.HTTPConnection:
    host, port = address.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def scrape(address: str) -> str:
    conn = _http_connection(address, 10.0)
    try:
        conn.request("GET", "/metrics", headers={"Accept": "text/plain;version=0.0.4"})
        response = conn.getresponse()
        return response.read().decode()
    finally:
        conn.close()


def sample(text: str, name: str) -> float:
    """The sum of the samples called `name` in an exposition text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


# ---------------------------------------------------------------------------------------------
# Load generators: each worker loops until the deadline and counts the spans answered OK


def _run_clients(worker: Callable[[float, list[int]], None], n: int, seconds: float) -> tuple[int, float]:
    """Run `n` workers until `seconds` from now; (spans they got answered, wall seconds). A worker's
    failure (an error answer, a lost connection) fails the benchmark instead of lowering a figure."""
    counts = [[0] for _ in range(n)]
    errors: list[BaseException] = []
    deadline = time.monotonic() + seconds

    def run(count: list[int]) -> None:
        try:
            worker(deadline, count)
        except BaseException as exc:  # reported below, on the benchmark's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(counts[i],), daemon=True) for i in range(n)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    if errors:
        raise RuntimeError(f"{len(errors)} load client(s) failed") from errors[0]
    return sum(c[0] for c in counts), time.monotonic() - start


def http_load(address: str, stamper: Stamper, seconds: float) -> tuple[int, float]:
    """Post stamped bodies over HTTP_CONNECTIONS keep-alive connections; (spans OK, wall seconds)."""
    headers = {"Content-Type": "application/x-protobuf"}

    def worker(deadline: float, count: list[int]) -> None:
        conn = _http_connection(address)
        try:
            while time.monotonic() < deadline:
                conn.request("POST", "/v1/traces", stamper.next_body(), headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"OTLP/HTTP answered {response.status}")
                count[0] += SPANS_PER_REQUEST
        finally:
            conn.close()

    return _run_clients(worker, HTTP_CONNECTIONS, seconds)


def grpc_load(address: str, stamper: Stamper, seconds: float) -> tuple[int, float]:
    """Call Export with raw stamped bodies over GRPC_CHANNELS channels; (spans OK, wall seconds)."""
    import grpc

    def worker(deadline: float, count: list[int]) -> None:
        # a local subchannel pool: each channel gets a connection of its own
        channel = grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1),
                                                          ("grpc.max_send_message_length", 64 << 20)])
        export = channel.unary_unary(GRPC_METHOD, request_serializer=None, response_deserializer=None)
        try:
            while time.monotonic() < deadline:
                export(stamper.next_body(), timeout=30)
                count[0] += SPANS_PER_REQUEST
        finally:
            channel.close()

    return _run_clients(worker, GRPC_CHANNELS, seconds)


@dataclass
class Throughput:
    spans: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def per_s(self) -> float:
        return self.spans / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def per_core(self) -> float:
        return self.spans / self.cpu_s if self.cpu_s > 0 else float("inf")


@dataclass
class Rate:
    """Spans over seconds, summed over the slices of a scenario."""

    spans: int = 0
    seconds: float = 0.0

    def add(self, spans: int, seconds: float) -> None:
        self.spans += spans
        self.seconds += seconds

    @property
    def per_s(self) -> float:
        return self.spans / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------------------------------------
# Visibility


def visibility_ms(server: Server, probes: int = 5) -> list[float]:
    """Post one LLM span with a fresh customer, poll /metrics until its cost shows: ms per probe."""
    from benchmarks.otlp_bodies import llm_span_body

    out = []
    for n in range(probes):
        customer = f"visibility-{os.getpid()}-{n}-{time.monotonic_ns()}"
        body = llm_span_body(customer)
        needle = f'customer="{customer}"'
        start = time.perf_counter()
        conn = _http_connection(server.addresses["otlp-http"])
        try:
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        while True:
            text = scrape(server.addresses["metrics"])
            if any(needle in line and line.startswith("llm_cost_usd_total") for line in text.splitlines()):
                break
            if time.perf_counter() - start > 10:
                raise RuntimeError("a posted span's cost did not show on /metrics within 10 s")
        out.append((time.perf_counter() - start) * 1000)
        time.sleep(0.05)
    return out


# ---------------------------------------------------------------------------------------------
# Same-run references, in this process


def timed(run: Callable[[], object]) -> float:
    """CPU seconds of this thread for `run()`: like the server's figure, CPU time, so that a busy shared
    machine's waits count in neither (wall time would make the references look slower than they are)."""
    gc.collect()
    start = time.thread_time()
    run()
    return time.thread_time() - start


def naive_receiver() -> Callable[[bytes], None]:
    """A straightforward Python receiver: generated classes, attribute dicts, prometheus_client."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    labels = ["service_name", "provider", "model", "operation", "customer", "feature"]
    spans = Counter("naive_spans", "spans", registry=registry)
    requests = Counter("naive_llm_requests", "calls", labels, registry=registry)
    tokens = Counter("naive_llm_tokens", "tokens", labels + ["token_type"], registry=registry)
    cost = Counter("naive_llm_cost_usd", "cost", labels, registry=registry)
    prices = {"gpt-4o": (2.5e-6, 1.25e-6, 10e-6), "gpt-4o-mini": (0.15e-6, 0.075e-6, 0.6e-6)}

    def value(v):  # AnyValue -> Python
        kind = v.WhichOneof("value")
        if kind == "array_value":
            return tuple(value(x) for x in v.array_value.values)
        return getattr(v, kind) if kind else None

    def handle(body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        for rs in request.resource_spans:
            resource = {kv.key: value(kv.value) for kv in rs.resource.attributes}
            service = resource.get("service.name", "unknown")
            for ss in rs.scope_spans:
                for span in ss.spans:
                    spans.inc()
                    attrs = {kv.key: value(kv.value) for kv in span.attributes}
                    if "gen_ai.operation.name" not in attrs:
                        continue
                    model = attrs.get("gen_ai.request.model", "unknown")
                    values = (service, attrs.get("gen_ai.provider.name", "unknown"), model,
                              attrs["gen_ai.operation.name"], attrs.get("customer.id", ""),
                              attrs.get("feature.id", ""))
                    inp = attrs.get("gen_ai.usage.input_tokens", 0)
                    out = attrs.get("gen_ai.usage.output_tokens", 0)
                    cached = attrs.get("gen_ai.usage.cache_read.input_tokens", 0)
                    requests.labels(*values).inc()
                    tokens.labels(*values, "input").inc(inp - cached)
                    tokens.labels(*values, "cache_read").inc(cached)
                    tokens.labels(*values, "output").inc(out)
                    p_in, p_cached, p_out = prices.get(model, (0.0, 0.0, 0.0))
                    cost.labels(*values).inc((inp - cached) * p_in + cached * p_cached + out * p_out)

    return handle


# ---------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    server: Throughput
    parse: Rate
    naive: Rate
    grpc_naive: Throughput | None = None  # the naive receiver behind grpcio (gRPC scenarios)
    grpc_null: Throughput | None = None  # grpcio alone, answering without looking


def _load_slice(server: Server, protocol: str, stamper: Stamper, seconds: float, into: Throughput) -> None:
    load = http_load if protocol == "http" else grpc_load
    address = server.addresses["otlp-http" if protocol == "http" else "otlp-grpc"]
    cpu0 = server.cpu_seconds()
    spans, wall = load(address, stamper, seconds)
    into.cpu_s += server.cpu_seconds() - cpu0
    into.spans += spans
    into.wall_s += wall


def seal_stored(conn: sqlite3.Connection) -> None:
    """Seal the hourly rollups over every call stored in the ledger behind `conn` (the passes serve's writer
    makes once the calls are `SEAL_GRACE_S` old), and no further: later calls must not be late."""
    from genai_meter.ledger.sqlite_rollups import seal

    until = conn.execute("SELECT MAX(end_ns) + 1 FROM calls").fetchone()[0] or 0
    while seal(conn, until)[0] < until:
        pass


def seal_cpu_seconds(path: Path) -> float:
    """CPU seconds of `seal_stored` on the ledger file at `path`: serve's work for a scenario's calls after
    it ends (counted with the server's CPU; it includes the warm-up's calls, so it errs high)."""
    from genai_meter.ledger.sqlite_schema import open_write

    conn = open_write(path, 30.0)
    try:
        start = time.thread_time()
        seal_stored(conn)
        return time.thread_time() - start
    finally:
        conn.close()


def _scenario(name: str, share: float, protocol: str, tmp: Path, ledger: str, path: str) -> Scenario:
    """Load a fresh server for SCENARIO_S seconds, in SLICES slices; before each slice, the same-run
    references run on the same bodies (so a drift of the shared machine's speed hits both alike).
    For gRPC, each slice also loads the two reference gRPC servers (grpcio alone, and the naive
    receiver behind grpcio) for the same time, in turn with the server under test."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    template = template_body(share)
    ref_bodies = Stamper(template).bodies(REFERENCE_BODIES)
    parse = ExportTraceServiceRequest.FromString
    naive = naive_receiver()
    for body in ref_bodies[:2]:
        naive(body)  # warm: its label children exist
    out = Scenario(Throughput(), Rate(), Rate())
    ref_spans = len(ref_bodies) * SPANS_PER_REQUEST
    stamper = Stamper(template)
    data = tmp / f"{protocol}-{share}-{ledger}-{path}"
    data.mkdir()
    servers = [start_server(data, ledger, path)]
    try:
        if protocol == "grpc":
            out.grpc_null, out.grpc_naive = Throughput(), Throughput()
            servers += [start_reference("null"), start_reference("naive")]
        for server in servers:
            _load_slice(server, protocol, stamper, WARMUP_S, Throughput())  # caches, price lookups, series
        for _ in range(SLICES):
            out.parse.add(ref_spans, timed(lambda: [parse(body) for body in ref_bodies]))
            out.naive.add(ref_spans, timed(lambda: [naive(body) for body in ref_bodies]))
            _load_slice(servers[0], protocol, stamper, SCENARIO_S / SLICES, out.server)
            if out.grpc_null is not None and out.grpc_naive is not None:
                _load_slice(servers[1], protocol, stamper, SCENARIO_S / SLICES, out.grpc_null)
                _load_slice(servers[2], protocol, stamper, SCENARIO_S / SLICES, out.grpc_naive)
        if ledger == "on":  # the hourly rollups of these calls, which serve seals a minute later
            out.server.cpu_s += seal_cpu_seconds(data / "ledger.db")
        text = scrape(servers[0].addresses["metrics"])
        counters = {name: sample(text, name) for name in (
            "genai_meter_spans_duplicate_total", "genai_meter_processing_errors_total",
            "genai_meter_ledger_failures_total")}
    finally:
        for server in servers:
            server.stop()
    if any(counters.values()):
        raise RuntimeError(f"{name}: duplicates or errors in the load: {counters}")
    return out


def _visibility_under_load(tmp: Path) -> tuple[list[float], list[float]]:
    """Visibility idle, then while OTLP/HTTP all-LLM load runs (ledger on, the default)."""
    data = tmp / "visibility"
    data.mkdir()
    server = start_server(data, "on")
    try:
        idle = visibility_ms(server)
        stamper = Stamper(template_body(1.0))
        loader = threading.Thread(target=http_load, args=(server.addresses["otlp-http"], stamper, 4.0),
                                  daemon=True)
        loader.start()
        time.sleep(0.5)
        busy = visibility_ms(server)
        loader.join(70)
    finally:
        server.stop()
    return idle, busy


def _rows(label: str, name: str, ledger: str, path: str, target: int, result: Scenario
          ) -> list[tuple[str, str, str]]:
    per_core, naive, parse = result.server.per_core, result.naive.per_s, result.parse.per_s
    head = f"{label}, {name}, ledger {ledger}, {path}"
    rows = [(f"{head}: serve, per CPU-second", f"{per_core:,.0f} spans/s",
             f"{per_core / naive:.2f}x naive, {per_core / parse:.3f}x parse floor "
             f"(target {target:,} quiet: {'meets' if per_core >= target else 'misses'}); "
             f"busy {result.server.cpu_s / result.server.wall_s:.0%} of a core")]
    if result.grpc_naive is not None and result.grpc_null is not None:
        rows.append((f"{head}: naive receiver behind grpcio", f"{result.grpc_naive.per_core:,.0f} spans/s",
                     f"serve is {per_core / result.grpc_naive.per_core:.2f}x it"))
        null_us = 1e6 / result.grpc_null.per_core
        rows.append((f"{head}: grpcio alone (null handler)", f"{result.grpc_null.per_core:,.0f} spans/s",
                     f"{null_us:.2f} µs/span of serve's {1e6 / per_core:.2f} µs "
                     f"({null_us * per_core / 1e6:.0%}) is grpcio's own"))
    rows.append((f"{head}: naive receiver, in-process", f"{naive:,.0f} spans/s", "reference, same slices"))
    rows.append((f"{head}: parse floor", f"{parse:,.0f} spans/s", "reference, upb FromString alone, same slices"))
    return rows


# (label, LLM share, protocol, ledger, path): both paths for every scenario (BENCH_ONLY selects)
SCENARIOS = [(label, share, protocol, ledger, path) for label, share in (("all-LLM", 1.0), ("10% LLM", 0.1))
             for protocol in ("http", "grpc") for ledger in ("none", "on") for path in ("accelerated", "pure")]


def main() -> None:
    only = os.environ.get("BENCH_ONLY", "")  # e.g. "all-LLM http" to run a subset
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="genai-meter-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for label, share, protocol, ledger, path in SCENARIOS:
            if only and only not in f"{label} {protocol} {ledger} {path}":
                continue
            target = HTTP_TARGET_PER_CORE if protocol == "http" else GRPC_TARGET_PER_CORE
            result = _scenario(f"{label} {protocol} {ledger} {path}", share, protocol, tmp, ledger, path)
            name = "OTLP/HTTP" if protocol == "http" else "OTLP/gRPC"
            new_rows = _rows(label, name, ledger, path, target, result)
            rows += new_rows
            for row in new_rows:
                print("  " + "  ".join(row), flush=True)
        if not only:
            idle, busy = _visibility_under_load(tmp)
            for label, values in (("idle", idle), ("under all-LLM HTTP load", busy)):
                worst = max(values)
                verdict = "meets" if worst <= VISIBILITY_TARGET_MS else "MISSES"
                rows.append((f"cost visible on /metrics, {label}", f"{worst:.1f} ms max",
                             f"median {statistics.median(values):.1f} ms of {len(values)}; "
                             f"target <= {VISIBILITY_TARGET_MS:.0f} ms: {verdict}"))
    report(f"OTLP receiver, {SPANS_PER_REQUEST} spans/request, {HTTP_CONNECTIONS} HTTP connections / "
           f"{GRPC_CHANNELS} gRPC channels, {SCENARIO_S:g} s per scenario; CPU of every server process", rows)


if __name__ == "__main__":
    main()
