"""Run the real Alertmanager 0.25 and amtool in tests, plus a webhook receiver to catch what it sends.

    with WebhookReceiver() as hook, start_alertmanager(config, workdir=tmp_path) as am:
        ...
        hook.wait_for(lambda posts: any(p.path == "/critical" for p in posts), timeout=60)

Alertmanager runs without clustering (`--cluster.listen-address=`), on an ephemeral 127.0.0.1
port, with its storage in a temp dir; it is stopped by PID. Every wait is bounded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.support.prometheus import LoopbackServer, http_json, launch_until_ready, wait_until

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
START_TIMEOUT_S = 20.0


def amtool(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run amtool with `args`; the completed process (check returncode yourself)."""
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=timeout)


@dataclass(frozen=True)
class Post:
    """One webhook notification: the request path and the decoded Alertmanager payload."""

    path: str
    payload: dict[str, Any]
    received: float  # time.monotonic() at arrival

    @property
    def alertnames(self) -> list[str]:
        return sorted(a["labels"].get("alertname", "") for a in self.payload.get("alerts", []))

    @property
    def group_labels(self) -> dict[str, str]:
        return dict(self.payload.get("groupLabels", {}))


class WebhookReceiver:
    """A small HTTP server on 127.0.0.1 that records every POSTed Alertmanager notification."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    payload = {"_raw": body.decode(errors="replace")}
                with receiver._lock:
                    receiver.posts.append(Post(self.path, payload, time.monotonic()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def snapshot(self) -> list[Post]:
        with self._lock:
            return list(self.posts)

    def wait_for(self, predicate: Callable[[list[Post]], Any], timeout: float) -> Any:
        """Poll `predicate(posts)` until truthy (returned) or `timeout` (raises AssertionError)."""
        value = wait_until(lambda: predicate(self.snapshot()), timeout, 0.2)
        if not value:
            raise AssertionError(f"webhook condition not met within {timeout}s; got {len(self.posts)} posts: "
                                 f"{[(p.path, p.alertnames, p.group_labels) for p in self.snapshot()]}")
        return value

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Alertmanager(LoopbackServer):
    """A running Alertmanager (see `start_alertmanager`)."""

    process: subprocess.Popen
    port: int
    config_file: Path
    log_file: Path
    flags: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        """host:port, for a Prometheus `alertmanagers` static config."""
        return f"127.0.0.1:{self.port}"

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds (API v2), with their status (active / suppressed)."""
        return http_json(f"{self.url}/api/v2/alerts")


def start_alertmanager(config: Mapping[str, Any] | Path, *, workdir: Path,
                       timeout: float = START_TIMEOUT_S) -> Alertmanager:
    """Start Alertmanager (no clustering) on an ephemeral 127.0.0.1 port; wait until ready."""
    workdir.mkdir(parents=True, exist_ok=True)
    if isinstance(config, Path):
        config_file = config
    else:
        config_file = workdir / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    storage = workdir / "alertmanager-data"
    storage.mkdir(parents=True, exist_ok=True)
    log_file = workdir / f"alertmanager-{time.monotonic_ns()}.log"
    def flags_for_port(port: int) -> list[str]:
        return [f"--config.file={config_file}", f"--storage.path={storage}",
                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=info"]

    process, port, flags = launch_until_ready("Alertmanager", ALERTMANAGER, flags_for_port, workdir=workdir,
                                              log_file=log_file, timeout=timeout)
    return Alertmanager(process, port, config_file, log_file, flags)
