"""The worker side of `serve --workers N`: one receiving process, and its view of the parent's dedup.

`worker_main` runs in each worker process (multiprocessing, spawn): it starts `Receivers` on the
shared ports with `RemoteDedup` and answers the parent's control messages (`ping`, `render`,
`drain`, `exit`). Protocol: receiver.workers' module docstring.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from genai_meter.collector_processor.receiver.lifecycle import setup_logging
from genai_meter.collector_processor.receiver.receivers import Receivers
from genai_meter.config import Config

# ---------------------------------------------------------------------------------------------
# Worker side


# Dedup pipe messages: one op byte, then 24-byte keys. Only CLAIM is answered (one byte per key).
CLAIM, SETTLE, RELEASE = b"C", b"S", b"R"
PONG, PONG_LEDGER_DOWN = "pong", "pong, ledger down"  # answers to `ping`
KEY_BYTES = 24


class RemoteDedup:
    """The worker's view of the parent's `SeenSpans` (thread-safe; one round trip per claim,
    settle and release are one-way). The parent releases a dead worker's claims."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def claim(self, keys: Sequence[bytes]) -> list[bool]:
        if not keys:
            return []
        with self._lock:
            self._conn.send_bytes(CLAIM + b"".join(keys))
            answer = self._conn.recv_bytes()
        return [b == 1 for b in answer]

    def settle(self, keys: Sequence[bytes]) -> None:
        self._send(SETTLE, keys)

    def release(self, keys: Sequence[bytes]) -> None:
        self._send(RELEASE, keys)

    def _send(self, op: bytes, keys: Sequence[bytes]) -> None:
        if keys:
            with self._lock:
                self._conn.send_bytes(op + b"".join(keys))


def worker_main(config: Config, slot: int, dedup_conn: Connection, control: Connection,
                log_level: str = "INFO") -> None:
    """Entry point of a worker process (multiprocessing, spawn)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    setup_logging(log_level)
    send_lock = threading.Lock()

    def send(message: Any) -> None:
        with send_lock:
            control.send(message)

    try:
        receivers = Receivers(config, dedup=RemoteDedup(dedup_conn), reuse_port=True)
        addresses = receivers.start()
    except Exception as exc:
        send((0, ("error", f"worker {slot}: {exc}")))
        return
    send((0, ("ready", addresses)))

    def drain(request_id: int) -> None:
        receivers.drain()
        send((request_id, "drained"))

    while True:
        try:
            request_id, op, arg = control.recv()
        except (EOFError, OSError):  # the parent is gone: stop at once
            os._exit(0)
        if op == "ping":  # the answer says whether this worker's ledger can write (the parent's /readyz)
            send((request_id, PONG if receivers.ledger_ready() else PONG_LEDGER_DOWN))
        elif op == "render":
            try:
                receivers.refresh_self_gauges()
                send((request_id, receivers.metrics.families()))
            except Exception as exc:  # pragma: no cover - reported to the parent
                send((request_id, exc))
        elif op == "drain":
            threading.Thread(target=drain, args=(request_id,), daemon=True).start()
        elif op == "exit":
            receivers.stop()
            send((request_id, "bye"))
            return
