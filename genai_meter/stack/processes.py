"""The demo's child processes and its stop signals: signal-safe, idempotent, bounded.

`StopSignals` counts SIGTERM/SIGINT in a handler that only increments an integer (no lock, no
Event: a handler runs on the main thread, possibly while that thread holds the very lock an
Event would take, which is how several SIGTERMs at once used to deadlock the demo). The main loop
polls the count. The first signal starts the stop; one more, arriving later than
`TOGETHER_S` after the first, hurries it (make, timeout and a terminal often deliver the same stop
as several signals at once: those count as one).

`Stack` starts each child in its own session (a Ctrl-C in the terminal reaches only the demo,
which then stops the children in order, after reading its summary) and stops them all by PID
within a deadline: SIGTERM to every one at once, SIGKILL to those left at the deadline, then reaps
each one so that no zombie remains.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO

TOGETHER_S = 1.0  # signals this close to the first one are the same stop


class StopSignals:
    """SIGTERM and SIGINT counted, never acted on inside the handler. The handlers stay installed
    once the demo is done (restore() puts the previous ones back), so late signals are harmless."""

    def __init__(self) -> None:
        self.count = 0
        self.later = 0  # signals more than TOGETHER_S after the first
        self.first_at: float | None = None  # time.monotonic() of the first signal
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        elif now - self.first_at > TOGETHER_S:
            self.later += 1
        self.count += 1  # reentrant: a second signal inside this handler only adds one more

    @property
    def stopping(self) -> bool:
        return self.count > 0

    @property
    def hurry(self) -> bool:
        """A later signal came: skip every wait that is not needed to leave nothing behind."""
        return self.later > 0

    def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early when a signal has come (or comes)."""
        deadline = time.monotonic() + seconds
        seen = self.count
        while self.count == seen and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))


class Stack:
    """The demo's processes; `stop(deadline)` ends every one it started, by PID."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._logs: list[IO[bytes]] = []

    def spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        self.processes.append((name, process))

    def check_alive(self) -> None:
        """Raise RuntimeError naming a child that exited, with the end of its log."""
        for name, process in self.processes:
            if process.poll() is not None:
                log = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")

    def stop(self, deadline: float, hurry: Callable[[], bool] = lambda: False) -> None:
        """SIGTERM every child at once, SIGKILL those still alive at `deadline` (time.monotonic())
        or as soon as `hurry()` is true, then reap all. Idempotent; never raises for a child gone."""
        for _name, process in self.processes:
            if process.poll() is None:
                try:
                    process.send_signal(signal.SIGKILL if hurry() else signal.SIGTERM)
                except ProcessLookupError:
                    pass
        while time.monotonic() < deadline and not hurry():
            if all(process.poll() is not None for _name, process in self.processes):
                break
            time.sleep(0.05)
        for _name, process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()

    @property
    def pids(self) -> list[int]:
        return [process.pid for _name, process in self.processes]


# flag -> what listens there (for a message that says which flag to change)
LISTEN_FLAGS = {
    "reports_listen": ("--reports-listen", "the web page (genai-meter reports)"),
    "grpc_listen": ("--grpc-listen", "genai-meter OTLP/gRPC"),
    "http_listen": ("--http-listen", "genai-meter OTLP/HTTP"),
    "metrics_listen": ("--metrics-listen", "genai-meter /metrics"),
    "prometheus_listen": ("--prometheus-listen", "Prometheus"),
    "alertmanager_listen": ("--alertmanager-listen", "Alertmanager"),
    "webhook_listen": ("--webhook-listen", "the alert webhook"),
}


def busy_port(addresses: dict[str, str]) -> str | None:
    """A message for the first address (attribute name -> 'HOST:PORT') that cannot be bound now,
    naming the flag that changes it; None when all are free. Also rejects two uses of one port."""
    seen: dict[str, str] = {}
    for attribute, address in addresses.items():
        flag, what = LISTEN_FLAGS[attribute]
        if address in seen:
            return f"{address} is given for both {LISTEN_FLAGS[seen[address]][0]} and {flag}"
        seen[address] = attribute
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not port.isdigit():
            return f"{flag}: expected HOST:PORT, got {address!r}"
        if not port_free(host, int(port)):
            return (f"{address} ({what}) is already in use: stop what listens there, or choose another port "
                    f"with {flag} HOST:PORT")
    return None


def port_free(host: str, port: int) -> bool:
    """True if a listening socket could be bound on (host, port) right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
