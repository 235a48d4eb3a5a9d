"""Stalled uploads against thread mode (rule C15): does a fresh GET still get answered?

Run with ``python -m benchmarks.stalled_uploads`` (``--clients``, ``--only``).

For each contender, one ``uvicorn`` process (``--loop asyncio``, one worker)
serves a raw WSGI app through the bridge with its **default options**. The app
reads the whole request body of a POST and answers ``ok``; a GET answers at
once. Then:

1. ``--clients`` raw sockets (default 200) each send ``POST`` with
   ``Content-Length: 1 MiB`` and part of the body, then stop sending. The
   stall points are spread over the body: right after the headers, inside the
   64 KiB prefetch, just past it, past the 256 KiB read-ahead window, and at
   500 KiB and 1 MiB - 1 byte.
2. After a settle time, five fresh GETs are sent one after the other on new
   connections, each with a 10 s cap, and their latency is recorded.
3. The server process's thread count and RSS are read from ``/proc`` before
   the stalls (after a warm-up) and while they are held.

The floor is the same GET with no stalled client, measured first in the same
run. Each line prints the worst GET latency under stalls, its ratio to the
floor, the threads and RSS added by the stalls, and whether every GET got a
200. Nothing runs longer than ~40 s per contender; every socket is closed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import _harness

BODY = 1 << 20
STALL_POINTS = (0, 1024, 65535, 66 * 1024, 300 * 1024, 500 * 1024, BODY - 1)
GET_TIMEOUT = 10.0

CONTENDERS = {
    "asgibridge thread": "benchmarks.stalled_uploads:asgibridge_thread",
    "asgibridge greenlet": "benchmarks.stalled_uploads:asgibridge_greenlet",
    "a2wsgi": "benchmarks.stalled_uploads:a2wsgi_app",
    "asgiref": "benchmarks.stalled_uploads:asgiref_app",
}


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """POST: read the whole body, then answer; anything else: answer at once."""
    if environ["REQUEST_METHOD"] == "POST":
        stream = environ["wsgi.input"]
        while stream.read(65536):
            pass
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def asgibridge_thread() -> object:
    from asgibridge import WsgiToAsgi

    return WsgiToAsgi(wsgi_app)


def asgibridge_greenlet() -> object:
    from asgibridge import WsgiToAsgi

    return WsgiToAsgi(wsgi_app, executor="greenlet")


def a2wsgi_app() -> object:
    from a2wsgi import WSGIMiddleware

    return WSGIMiddleware(wsgi_app)  # type: ignore[arg-type]  # a2wsgi's Environ is a TypedDict


def asgiref_app() -> object:
    from asgiref.wsgi import WsgiToAsgi

    return WsgiToAsgi(wsgi_app)  # type: ignore[no-untyped-call]  # asgiref's is untyped


def proc_stats(pid: int) -> tuple[int, int]:
    """(threads, RSS in KiB) of process ``pid``."""
    threads = rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return threads, rss


def timed_get(port: int) -> tuple[float, bool]:
    """Latency of one GET on a fresh connection (capped at GET_TIMEOUT) and whether it was 200."""
    start = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=GET_TIMEOUT) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = conn.recv(64)
    except OSError:
        return GET_TIMEOUT, False
    return time.perf_counter() - start, data.startswith(b"HTTP/1.1 200")


def stall(port: int, clients: int) -> list[socket.socket]:
    """Open ``clients`` uploads, each stopped at one of STALL_POINTS; return their sockets."""
    socks: list[socket.socket] = []
    head = (
        f"POST /upload HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {BODY}\r\n\r\n"
    ).encode()
    chunk = b"x" * 65536
    for i in range(clients):
        point = STALL_POINTS[i % len(STALL_POINTS)]
        s = socket.create_connection(("127.0.0.1", port), timeout=5.0)
        socks.append(s)
        s.sendall(head)
        left = point
        while left > 0:
            n = min(left, len(chunk))
            s.sendall(chunk[:n])
            left -= n
    return socks


def run_one(name: str, target: str, clients: int, settle: float) -> dict[str, object]:
    port = _harness.free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        target,
        "--port",
        str(port),
        "--loop",
        "asyncio",
        "--http",
        "h11",
        "--log-level",
        "error",
        "--no-access-log",
        "--backlog",
        "4096",
        "--timeout-graceful-shutdown",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socks: list[socket.socket] = []
    try:
        _harness.wait_ready(port, proc, name)
        for _ in range(20):  # warm-up: the pool and caches exist before the baseline
            timed_get(port)
        floor = statistics.median(timed_get(port)[0] for _ in range(20))
        threads0, rss0 = proc_stats(proc.pid)
        socks = stall(port, clients)
        time.sleep(settle)
        gets = [timed_get(port) for _ in range(5)]
        threads1, rss1 = proc_stats(proc.pid)
        worst = max(t for t, _ in gets)
        return {
            "name": name,
            "floor_ms": floor * 1000,
            "worst_ms": worst * 1000,
            "ratio": worst / floor if floor else float("inf"),
            "all_200": all(ok for _, ok in gets),
            "threads": threads1 - threads0,
            "threads_total": threads1,
            "rss_mib": (rss1 - rss0) / 1024,
        }
    finally:
        for s in socks:
            s.close()
        _harness.stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=200, help="stalled uploads (default 200)")
    parser.add_argument("--settle", type=float, default=1.5, help="seconds before the GETs")
    parser.add_argument("--only", action="append", help="run only these contenders")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    print(
        f"uvicorn --loop asyncio --http h11, one worker; {args.clients} uploads of a 1 MiB body "
        f"stalled at {', '.join(str(p) for p in STALL_POINTS)} bytes; 5 fresh GETs after "
        f"{args.settle:g}s (each capped at {GET_TIMEOUT:g}s); bridges with default options"
    )
    print(
        f"{'contender':22} {'floor ms':>9} {'worst ms':>9} {'x floor':>8} {'GETs 200':>9} "
        f"{'+threads':>9} {'threads':>8} {'+RSS MiB':>9}"
    )
    for name, target in CONTENDERS.items():
        if args.only and name not in args.only:
            continue
        r = run_one(name, target, args.clients, args.settle)
        print(
            f"{name:22} {r['floor_ms']:9.2f} {r['worst_ms']:9.1f} {r['ratio']:8.0f} "
            f"{'yes' if r['all_200'] else 'NO':>9} {r['threads']:9d} {r['threads_total']:8d} "
            f"{r['rss_mib']:9.1f}"
        )
    print(
        "worst ms = the slowest of the five GETs (10000 = no answer in 10 s); x floor = worst / "
        "floor. Target (C15): asgibridge thread answers within 1000 ms."
    )


if __name__ == "__main__":
    main()
