"""One client cannot stall the service: health answers while slow readers and heavy reports run.

A real `genai-meter reports` (waitress, its own process) over a seeded ledger where the heavy report
(a 90-day daily trend by customer, read from raw calls) takes seconds. Eight sockets ask for the calls
CSV and read it at 1 KiB/s, eight clients ask for the heavy report at once; meanwhile
`/api/v1/health` must answer (a generous bound: before, it waited until a slow reader gave up). Every
heavy answer is a report, or a JSON 503 (busy, with Retry-After) or 504 (time limit): never a hang,
a 500 or a stack trace; some of them are served in full. With a short time limit, eight heavy grouped
reports (trend, detailed, cost as XLSX, latency) answer 504 naming the limit while health keeps answering.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.reports.conftest import ADMIN_TOKEN, make_config, start_service, stop_service
from tests.reports.service.seeded import seed_ledger

HEAVY = "/api/v1/reports/trend?range=90d&step=1d&group_by=customer"
EXPORT = "/api/v1/events?format=csv&range=30d"


def served_port(proc: object) -> int:
    """The port `genai-meter reports` printed it serves on (first line of its output)."""
    line = proc.stdout.readline()  # type: ignore[attr-defined]
    assert "serving http://127.0.0.1:" in line, line
    return int(line.split("http://127.0.0.1:")[1].split("/")[0])


class SlowReader:
    """A socket that sends one request and then reads the answer at about 1 KiB per second."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
                          "\r\n".encode())
        self.head = b""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        self.sock.settimeout(1.0)
        while not self.stop.is_set():
            try:
                chunk = self.sock.recv(1024)
            except OSError:
                continue
            if not chunk:
                return
            if len(self.head) < 200:
                self.head += chunk
            self.stop.wait(1.0)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def fetch(port: int, path: str, timeout: float, results: list[tuple[int, dict[str, str], bytes]]) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            results.append((answer.status, dict(answer.headers), answer.read(2000)))
    except urllib.error.HTTPError as exc:
        results.append((exc.code, dict(exc.headers), exc.read()))
    except OSError as exc:
        results.append((0, {}, str(exc).encode()))


@pytest.mark.slow
def test_health_answers_under_slow_readers_and_heavy_reports(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    seed_ledger(tmp_path / "ledger.db", calls=60_000, customers=3000, end_ns=time.time_ns(), pad=200)
    assert config.source_path is not None
    proc = start_service(config.source_path, 0)
    readers: list[SlowReader] = []
    heavy: list[tuple[int, dict[str, str], bytes]] = []
    workers: list[threading.Thread] = []
    try:
        port = served_port(proc)
        readers = [SlowReader(port, EXPORT) for _ in range(2)]  # admitted at once: the service is idle
        time.sleep(0.5)
        workers = [threading.Thread(target=fetch, args=(port, HEAVY, 180, heavy), daemon=True) for _ in range(8)]
        for worker in workers:
            worker.start()
        time.sleep(0.5)
        readers += [SlowReader(port, EXPORT) for _ in range(6)]
        time.sleep(2.0)  # the exports and reports are under way
        waits = []
        for _ in range(5):
            answers: list[tuple[int, dict[str, str], bytes]] = []
            started = time.monotonic()
            fetch(port, "/api/v1/health", 15, answers)
            waits.append(time.monotonic() - started)
            assert answers[0][0] == 200, (answers, waits)
            assert json.loads(answers[0][2])["status"] == "ok"
            time.sleep(1.0)
        print(f"health waits under load: {', '.join(f'{w:.3f} s' for w in waits)}")
        for worker in workers:
            worker.join(timeout=200)
        until = time.monotonic() + 120
        while time.monotonic() < until and not all(r.head for r in readers):
            time.sleep(0.5)
        assert len(heavy) == 8
        print(f"heavy answers: {sorted(status for status, _, _ in heavy)}; exports: "
              f"{sorted(r.head.split(b' ')[1].decode() for r in readers if r.head)}")
        for status, headers, body in heavy:
            assert status in (200, 503, 504), (status, body[:300])
            if status != 200:
                error = json.loads(body)["error"]
                assert error["status"] == status and "Traceback" not in error["message"]
            if status == 503:
                assert int(headers["Retry-After"]) >= 1
        for reader in readers:
            assert reader.head.startswith(b"HTTP/1.1 "), reader.head[:100]
        assert [r.head.split(b" ")[1] for r in readers[:2]] == [b"200", b"200"]  # sent to the slow readers
        assert 200 in [status for status, _, _ in heavy]  # reports ran after the exports were written
        metrics: list[tuple[int, dict[str, str], bytes]] = []
        fetch(port, "/api/v1/metrics", 15, metrics)
        assert b"genai_meter_report_spool_bytes 0\n" not in metrics[0][2]  # still being sent to the slow readers
        for reader in readers:
            reader.close()
        until = time.monotonic() + 60
        while time.monotonic() < until and b"genai_meter_report_spool_bytes 0\n" not in metrics[-1][2]:
            time.sleep(0.5)
            fetch(port, "/api/v1/metrics", 15, metrics)
        assert b"genai_meter_report_spool_bytes 0\n" in metrics[-1][2]  # closed connections gave their files back
    finally:
        for reader in readers:
            reader.close()
        stop_service(proc)


@pytest.mark.slow
def test_heavy_grouped_reports_answer_504_at_their_limit_while_health_answers(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"reports": {"limits": {"request_seconds": 0.2}}})
    seed_ledger(tmp_path / "ledger.db", calls=60_000, customers=3000, end_ns=time.time_ns())
    assert config.source_path is not None
    proc = start_service(config.source_path, 0)
    heavy: list[tuple[int, dict[str, str], bytes]] = []
    paths = [HEAVY, "/api/v1/reports/detailed?range=90d&group_by=customer",
             "/api/v1/reports/cost?range=90d&group_by=customer&format=xlsx", "/api/v1/latency?range=90d&group_by=customer"]
    try:
        port = served_port(proc)
        workers = [threading.Thread(target=fetch, args=(port, paths[i % 4], 120, heavy), daemon=True)
                   for i in range(8)]
        for worker in workers:
            worker.start()
        health: list[tuple[int, dict[str, str], bytes]] = []
        waits = []
        while any(worker.is_alive() for worker in workers) and len(health) < 50:
            started = time.monotonic()
            fetch(port, "/api/v1/health", 15, health)
            waits.append(time.monotonic() - started)
        for worker in workers:
            worker.join(timeout=130)
        assert health and all(status == 200 for status, _, _ in health), health[:3]
        assert len(heavy) == 8
        statuses = sorted(status for status, _, _ in heavy)
        print(f"heavy answers: {statuses}; health answered {len(health)} times meanwhile, "
              f"the slowest in {max(waits):.3f} s")
        assert 504 in statuses and set(statuses) <= {200, 504}, statuses
        for status, _, body in heavy:
            if status == 504:
                error = json.loads(body)["error"]
                assert error["status"] == 504
                assert error["message"].startswith("the answer took longer than its time limit of 0.2 s "
                                                   "(reports.limits.request_seconds)"), error
    finally:
        out = stop_service(proc)
    assert "Traceback" not in out and "ran past its time limit of 0.2 s" in out


@pytest.mark.slow
def test_slow_readers_never_hold_the_worker_threads(tmp_path: Path) -> None:
    """Two threads in all, two slow readers of an export larger than waitress's 16 MiB output buffer:
    once written, an export is sent by the server's main loop, so both threads are free for health."""
    config = make_config(tmp_path, {"reports": {"threads": 2, "limits": {"heavy_concurrent": 1, "heavy_queue": 0}}})
    seed_ledger(tmp_path / "ledger.db", calls=20_000, customers=500, end_ns=time.time_ns(), pad=1000)
    assert config.source_path is not None
    proc = start_service(config.source_path, 0)
    readers: list[SlowReader] = []
    try:
        port = served_port(proc)
        for _ in range(2):  # one after the other: the second is admitted once the first was written
            readers.append(SlowReader(port, "/api/v1/events?format=csv&range=90d"))
            until = time.monotonic() + 120
            while time.monotonic() < until and not readers[-1].head:
                time.sleep(0.2)
            assert readers[-1].head.startswith(b"HTTP/1.1 200"), readers[-1].head[:100]
            length = int(readers[-1].head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            assert length > 32 * 1024 * 1024  # far more than the socket and waitress buffers hold
        answers: list[tuple[int, dict[str, str], bytes]] = []
        for _ in range(3):
            fetch(port, "/api/v1/health", 15, answers)
        assert [status for status, _, _ in answers] == [200, 200, 200], answers
        assert all(not r.stop.is_set() and r.thread.is_alive() for r in readers)  # still reading, slowly
    finally:
        for reader in readers:
            reader.close()
        stop_service(proc)
