"""`genai-meter demo` as a test drives it: a subprocess on free ports, its stdout read line by line
with arrival times, and /proc helpers to check that nothing it started is left."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tests.support.prometheus import free_port

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ("--grpc-listen", "--http-listen", "--metrics-listen", "--prometheus-listen", "--alertmanager-listen",
         "--webhook-listen", "--reports-listen")


class Demo:
    """`genai-meter demo` in a subprocess, its stdout read line by line with arrival times."""

    def __init__(self, *extra: str) -> None:
        self.ports = {flag: free_port() for flag in FLAGS}
        argv = [sys.executable, "-m", "genai_meter", "demo", *extra]
        for flag, port in self.ports.items():
            argv += [flag, f"127.0.0.1:{port}"]
        env = {k: v for k, v in os.environ.items() if k not in ("GENAI_METER_CONFIG", "GENAI_METER_LEDGER")}
        self.started = time.monotonic()
        self.process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env={**env, "PYTHONUNBUFFERED": "1"})
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put((time.monotonic(), line))

    def wait_for(self, pattern: str, timeout: float) -> tuple[float, str] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                at, line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    return None
                continue
            self.output.append(line)
            if re.search(pattern, line):
                return at, line
        return None

    def text(self) -> str:
        while not self.lines.empty():
            self.output.append(self.lines.get()[1])
        return "".join(self.output)

    def kill(self) -> None:
        """After a failed test: the demo's own stop first (it stops its children), then SIGKILL to
        whatever is left, children included (they run in sessions of their own)."""
        if self.process.poll() is not None:
            return
        children = children_of(self.process.pid)
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            for pid in [*children_of(self.process.pid), *children]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.kill()
            self.process.wait(10)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"



def get_json(url: str, timeout: float = 5.0) -> dict[str, object]:
    """GET `url` and decode its JSON object."""
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        body = json.load(answer)
    assert isinstance(body, dict), body
    return body


def first_url(text: str) -> str | None:
    """The first http:// or grpc:// URL in `text`."""
    found = re.search(r"\b(?:http|grpc)://\S+", text)
    return found[0] if found else None
