"""Reference gRPC servers for bench_receiver, run as a subprocess: `python -m benchmarks.grpc_reference MODE`.

MODE `null`: grpcio alone, with the same options and thread pool as `genai-meter serve` and a raw-bytes
handler that answers an empty response: what grpcio itself costs per span (its C core, the handler
thread, the GIL hand-over), the part no pure-Python receiver can save.
MODE `naive`: the same server running the straightforward receiver of bench_receiver (generated
classes, attribute dicts, prometheus_client): "its straightforward receiver" over gRPC.

Prints `listening on HOST:PORT` and serves until SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures

import grpc

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
THREADS = 64  # as serve: min(server.max_concurrent_requests, 64)


def main(mode: str) -> None:
    handle = None
    if mode == "naive":
        from benchmarks.bench_receiver import naive_receiver

        handle = naive_receiver()
    lock = threading.Lock()  # as serve: one request's Python work at a time

    def export(request: bytes, context: grpc.ServicerContext) -> bytes:
        if handle is not None:
            with lock:
                handle(request)
        return b""

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=THREADS),
        handlers=[grpc.method_handlers_generic_handler(SERVICE, {
            "Export": grpc.unary_unary_rpc_method_handler(export)})],
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.so_reuseport", 0)],
        maximum_concurrent_rpcs=THREADS * 4,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(1).wait(5)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "null")
