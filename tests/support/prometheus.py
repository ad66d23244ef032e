"""Run the real Prometheus 2.42 and promtool in tests: loopback only, temp dirs, bounded waits.

    with start_prometheus(config, workdir=tmp_path) as prom:   # config: a dict or a YAML file
        prom.wait_for(lambda: prom.query("up") != [], timeout=20)
        rows = prom.query('sum(rate(llm_requests_total[5m]))')

Every process is started in its own session and stopped by PID (SIGTERM, then SIGKILL). Every
wait is a bounded polling loop. Nothing binds anything but 127.0.0.1.

Backfill helpers write OpenMetrics history and turn it into TSDB blocks with
`promtool tsdb create-blocks-from openmetrics` (split by day: promtool re-reads its whole input
for every 2-hour block, so one file per day keeps that linear), and backfill recording rules with
`promtool tsdb create-blocks-from rules` against a running server.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
START_TIMEOUT_S = 20.0  # the first scrape lands ~6.5 s after start; readiness comes sooner
BLOCK_SECONDS = 7200  # TSDB block length that promtool backfills in


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy (returned) or `timeout` passes (None).

    Exceptions count as "not yet"; the last one is re-raised if time runs out without success.
    """
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            error = None
        except Exception as exc:
            error = exc
        if time.monotonic() >= deadline:
            if error is not None:
                raise error
            return None
        time.sleep(interval)


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """SIGTERM the process (by PID), SIGKILL it after `timeout`; returns its exit code."""
    if process.poll() is None:
        try:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)
        except ProcessLookupError:
            pass
    return process.returncode


def launch_until_ready(name: str, binary: str, flags_for_port: Callable[[int], list[str]], *, workdir: Path,
                       log_file: Path, timeout: float, error: type[AssertionError] = AssertionError,
                       ) -> tuple[subprocess.Popen, int, list[str]]:
    """Start `binary` with `flags_for_port(port)` on an ephemeral 127.0.0.1 port; wait for /-/ready.

    Tries three ports (one can be taken between free_port() and bind). Returns (process, port,
    flags); raises `error` with the log's tail when it does not come up within `timeout`.
    """
    last_error = ""
    for _attempt in range(3):
        port = free_port()
        flags = flags_for_port(port)
        with log_file.open("ab") as log:
            process = subprocess.Popen([binary, *flags], stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)

        def ready() -> bool:
            if process.poll() is not None:
                raise error(f"{name} exited with {process.returncode}:\n"
                            f"{log_file.read_text(errors='replace')[-3000:]}")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
                return response.status == 200

        try:
            if wait_until(ready, timeout, 0.1):
                return process, port, flags
            last_error = f"not ready within {timeout}s"
        except error as exc:
            last_error = str(exc)
        stop_process(process)
        if "address already in use" not in last_error:
            break
    raise error(f"{name} did not start: {last_error}\n{log_file.read_text(errors='replace')[-3000:]}")


def http_json(url: str, data: Mapping[str, str] | None = None, timeout: float = 30.0, method: str = "POST") -> Any:
    """Form-POST `data` to `url` (GET with a query string when `method` is GET or there is no
    data) and decode the JSON answer."""
    body = None
    if data is not None and method == "POST":
        body = urllib.parse.urlencode(data).encode()
    elif data is not None:
        url = f"{url}?{urllib.parse.urlencode(data)}"
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


class PrometheusError(AssertionError):
    """Prometheus refused a query or did not come up; the message carries its answer or log."""


class LoopbackServer:
    """What the records of a started binary share: its URL, its log, and stopping it by PID.

    Subclasses are dataclasses with `process`, `port` and `log_file` fields.
    """

    process: subprocess.Popen
    port: int
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, tail: int = 40) -> str:
        """The last lines of the server's log."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-tail:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        return stop_process(self.process)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Prometheus(LoopbackServer):
    """A running Prometheus server (see `start_prometheus`)."""

    process: subprocess.Popen
    port: int
    data_dir: Path
    config_file: Path
    log_file: Path
    flags: list[str] = field(default_factory=list)

    def api(self, path: str, params: Mapping[str, str] | None = None, timeout: float = 30.0,
            method: str = "POST") -> Any:
        """Call /api/v1/<path> (form POST, or GET), return its `data`; raises PrometheusError."""
        try:
            answer = http_json(f"{self.url}/api/v1/{path}", params, timeout, method)
        except urllib.error.HTTPError as exc:
            raise PrometheusError(f"{path} {dict(params or {})}: HTTP {exc.code}: {exc.read().decode()[:2000]}") \
                from None
        if answer.get("status") != "success":
            raise PrometheusError(f"{path} {dict(params or {})}: {answer}")
        return answer["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; the result vector (or a one-element list for a scalar)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", params)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [{"value": data["result"]}]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """Range query; the result matrix."""
        return self.api("query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                        "step": f"{step:g}"})["result"]

    def value(self, expr: str, default: float | None = None) -> float | None:
        """The single value of an instant query (sum it yourself if it has several series)."""
        rows = self.query(expr)
        if not rows:
            return default
        return float(rows[0]["value"][1])

    def alerts(self) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts."""
        return self.api("alerts")["alerts"]

    def rule_groups(self) -> list[dict[str, Any]]:
        return self.api("rules")["groups"]

    def targets_up(self) -> bool:
        """True once every active target has been scraped successfully."""
        targets = self.api("targets")["activeTargets"]
        return bool(targets) and all(t["health"] == "up" for t in targets)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.25) -> Any:
        """Poll `predicate` (bounded); raises PrometheusError with the log tail on time-out."""
        value = wait_until(predicate, timeout, interval)
        if not value:
            raise PrometheusError(f"condition not met within {timeout}s; Prometheus log:\n{self.log()}")
        return value


def start_prometheus(config: Mapping[str, Any] | Path, *, workdir: Path, data_dir: Path | None = None,
                     extra_flags: Sequence[str] = (), retention: str | None = None,
                     timeout: float = START_TIMEOUT_S) -> Prometheus:
    """Start Prometheus on an ephemeral 127.0.0.1 port and wait until it is ready.

    `config` is a Prometheus config (dict, written to `workdir/prometheus.yml`) or the path of one
    (rule_files are then relative to it). `data_dir` defaults to `workdir/data` (kept, so a second
    server can reopen it). `retention` adds --storage.tsdb.retention.time.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if isinstance(config, Path):
        config_file = config
    else:
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    data_dir = data_dir or workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = workdir / f"prometheus-{time.monotonic_ns()}.log"
    def flags_for_port(port: int) -> list[str]:
        flags = [f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
                 f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle",
                 "--log.level=info", *extra_flags]
        if retention:
            flags.append(f"--storage.tsdb.retention.time={retention}")
        return flags

    process, port, flags = launch_until_ready("Prometheus", PROMETHEUS, flags_for_port, workdir=workdir,
                                              log_file=log_file, timeout=timeout, error=PrometheusError)
    return Prometheus(process, port, data_dir, config_file, log_file, flags)


# -- backfill ---------------------------------------------------------------------------------

@dataclass
class Family:
    """One OpenMetrics metric family for backfilling: `samples` maps a sample name and label set
    (`(name, ((label, value), ...))`) to its points `[(unix seconds, value), ...]` in time order."""

    name: str  # family name: `llm_requests` for the `llm_requests_total` samples of a counter
    type: str  # counter, gauge or histogram
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = field(default_factory=dict)

    def add(self, sample: str, labels: Mapping[str, str], t: float, value: float) -> None:
        key = (sample, tuple(sorted(labels.items())))
        self.samples.setdefault(key, []).append((t, value))


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def write_openmetrics(families: Iterable[Family], path: Path, start: float | None = None,
                      end: float | None = None) -> int:
    """Write the points of `families` with start <= t < end as OpenMetrics to `path`; returns the
    number of samples written."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for family in families:
            out.write(f"# TYPE {family.name} {family.type}\n")
            for (sample, labels), points in family.samples.items():
                label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                prefix = f"{sample}{{{label_text}}} " if label_text else f"{sample} "
                for t, value in points:
                    if (start is None or t >= start) and (end is None or t < end):
                        out.write(f"{prefix}{_fmt(value)} {t:.3f}\n")
                        count += 1
        out.write("# EOF\n")
    return count


def backfill_openmetrics(families: Sequence[Family], data_dir: Path, workdir: Path, *,
                         chunk_seconds: int = 86400, timeout: float = 300.0) -> int:
    """Write `families` as TSDB blocks into `data_dir` (the server must not be running on it).

    The history is cut into `chunk_seconds` files, converted in parallel; returns the sample count.
    """
    points = [t for f in families for pts in f.samples.values() for t, _ in pts]
    if not points:
        return 0
    first, last = min(points), max(points)
    start = math.floor(first / chunk_seconds) * chunk_seconds
    jobs = []
    total = 0
    workdir.mkdir(parents=True, exist_ok=True)
    while start <= last:
        path = workdir / f"history-{int(start)}.om"
        total += write_openmetrics(families, path, start, start + chunk_seconds)
        jobs.append(path)
        start += chunk_seconds
    data_dir.mkdir(parents=True, exist_ok=True)

    def convert(path: Path) -> None:
        out = path.with_suffix(".blocks")
        result = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "-q", str(path), str(out)],
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise PrometheusError(f"promtool create-blocks-from openmetrics {path.name}: {result.stderr[-2000:]}")
        move_blocks(out, data_dir)

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        list(pool.map(convert, jobs))
    return total


def backfill_rules(rule_files: Sequence[Path], *, url: str, start: float, end: float, data_dir: Path,
                   workdir: Path, eval_interval: str = "60s", timeout: float = 300.0) -> None:
    """Evaluate the recording rules of `rule_files` over [start, end] against the server at `url`
    and write the results as blocks into `data_dir` (move them in while that server is stopped).

    `start` is rounded down to a 2-hour block boundary: promtool 2.42 silently writes nothing for
    rule groups evaluated every 10 minutes or more unless the start is aligned. Raises
    PrometheusError when no block comes out.
    """
    out = workdir / "rule-blocks"
    aligned = int(start) // BLOCK_SECONDS * BLOCK_SECONDS
    result = subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "rules", f"--url={url}", f"--start={aligned}",
         f"--end={int(end)}", f"--output-dir={out}", f"--eval-interval={eval_interval}",
         *map(str, rule_files)],
        capture_output=True, text=True, timeout=timeout, cwd=workdir)
    if result.returncode != 0:
        raise PrometheusError(f"promtool create-blocks-from rules: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    data_dir.mkdir(parents=True, exist_ok=True)
    if not move_blocks(out, data_dir):
        raise PrometheusError(f"promtool create-blocks-from rules wrote no blocks:\n{result.stderr[-2000:]}")


def move_blocks(source: Path, data_dir: Path) -> int:
    """Move the TSDB block folders (ULID names) from `source` into `data_dir`; returns how many."""
    moved = 0
    if not source.is_dir():
        return 0
    for block in sorted(source.iterdir()):
        if block.is_dir() and (block / "meta.json").exists():
            shutil.move(str(block), str(data_dir / block.name))
            moved += 1
    return moved


def promtool(*args: str, timeout: float = 120.0, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run promtool with `args`; the completed process (check returncode yourself)."""
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)
