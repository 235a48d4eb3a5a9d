"""Soak: many connections for a long time through each bridge; zero errors, flat memory.

Run with ``python -m benchmarks.soak`` (defaults: 200 connections for 60 s
per bridge; ``--duration``, ``--connections``, ``--only wsgi|asgi``;
``--quick`` is 50 connections for 10 s). Needs ``wrk`` (``apt-get install -y wrk``).

Two setups, each a fresh server process on 127.0.0.1:

* ``wsgi``: a Flask hello (``GET /`` -> ``Hello, World!``) wrapped in
  ``WsgiToAsgi`` (thread executor, defaults) on ``uvicorn --workers 1``;
* ``asgi``: a Starlette hello wrapped in ``AsgiToWsgi`` (defaults) on
  ``gunicorn --workers 1 --worker-class gthread --threads 32``.

wrk (``-t2 -cN -dS --timeout 10s``) drives each one after a 2 s warm-up.
While it runs, the resident set size of the server's whole process tree is
read from ``/proc`` every second. The run passes when wrk reports no socket
error (connect, read, write, timeout) and no non-2xx response, and RSS over
the last 30 s stays within 5% (max over min of the window). Every figure is
printed, pass or fail, and with ``--json FILE`` written out as well.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from . import _harness

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 30  # seconds of RSS the flatness check covers
FLAT = 0.05  # allowed spread (max / min - 1) inside the window


# ------------------------------------------------------------------- the apps
# The server processes import these factories: ``benchmarks.soak:flask_bridge``.


def flask_bridge() -> Any:
    """A Flask hello through WsgiToAsgi (the ASGI app uvicorn serves)."""
    from flask import Flask

    from asgibridge import WsgiToAsgi

    app = Flask("soak")

    @app.get("/")
    def hello() -> str:
        return "Hello, World!"

    return WsgiToAsgi(app)


def starlette_bridge() -> Any:
    """A Starlette hello through AsgiToWsgi (the WSGI app gunicorn serves)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from asgibridge import AsgiToWsgi

    async def hello(request: Any) -> PlainTextResponse:
        return PlainTextResponse("Hello, World!")

    return AsgiToWsgi(Starlette(routes=[Route("/", hello)]))


# ------------------------------------------------------------------- servers


def start_server(kind: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    if kind == "wsgi":
        cmd = _harness.uvicorn_cmd("benchmarks.soak:flask_bridge", port, extra=("--factory",))
    else:
        cmd = _harness.gunicorn_gthread_cmd(
            "benchmarks.soak:starlette_bridge()",
            f"127.0.0.1:{port}",
            threads=32,
            extra=("--worker-connections", "1000", "--timeout", "60"),
        )
    with log.open("ab") as f:
        f.write(f"==== {kind}: {' '.join(cmd)}\n".encode())
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    _harness.stop(proc, 15.0)


def tree_rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` and all its descendants, in KiB (from /proc)."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        if m:
            total += int(m.group(1))
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                stack.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return total


# ----------------------------------------------------------------------- run


def wrk(port: int, seconds: float, connections: int) -> dict[str, Any]:
    out = _harness.run_wrk(
        port, seconds, connections, threads=2, extra=("--timeout", "10s"), slack=60.0
    )
    rps = _harness.wrk_rps(out)
    total = re.search(r"(\d+) requests in", out)
    if total is None:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    latency = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    return {
        "requests": int(total.group(1)),
        "rps": rps,
        "non_2xx": _harness.wrk_non2xx(out),
        "socket_errors": _harness.wrk_socket_errors(out),
        "latency_avg": latency.group(1) if latency else "?",
        "latency_max": latency.group(3) if latency else "?",
    }


def soak(kind: str, seconds: float, connections: int, log: Path) -> dict[str, Any]:
    port = _harness.free_port()
    proc = start_server(kind, port, log)
    try:
        server = "uvicorn" if kind == "wsgi" else "gunicorn"
        _harness.wait_ready(port, proc, server)
        _harness.wrk(port, 2, connections)  # warm-up: imports, pools, caches
        samples: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            next_at = time.monotonic()
            while not stop.is_set():
                samples.append(tree_rss_kib(proc.pid))
                next_at += 1.0
                stop.wait(max(0.0, next_at - time.monotonic()))

        sampler = threading.Thread(target=sample, name="rss-sampler")
        sampler.start()
        try:
            result = wrk(port, seconds, connections)
        finally:
            stop.set()
            sampler.join()
        alive = proc.poll() is None
    finally:
        stop_server(proc)
    window = samples[-WINDOW:] if len(samples) >= WINDOW else samples[len(samples) // 2 :]
    spread = max(window) / min(window) - 1 if window else float("nan")
    errors = sum(result["socket_errors"].values()) + result["non_2xx"]
    result.update(
        {
            "bridge": "WsgiToAsgi (Flask) on uvicorn"
            if kind == "wsgi"
            else "AsgiToWsgi (Starlette) on gunicorn gthread",
            "seconds": seconds,
            "connections": connections,
            "rss_kib": samples,
            "rss_window_min_kib": min(window) if window else 0,
            "rss_window_max_kib": max(window) if window else 0,
            "rss_window_spread": spread,
            "rss_first_kib": samples[0] if samples else 0,
            "rss_last_kib": samples[-1] if samples else 0,
            "server_alive": alive,
            "passed": errors == 0 and spread <= FLAT and alive,
        }
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per bridge")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--only", choices=["wsgi", "asgi"], action="append")
    parser.add_argument("--quick", action="store_true", help="50 connections for 10 s")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    seconds = 10.0 if args.quick else args.duration
    connections = 50 if args.quick else args.connections
    log = Path(tempfile.gettempdir()) / "asgibridge-soak.log"
    log.write_bytes(b"")
    results = [soak(kind, seconds, connections, log) for kind in (args.only or ["wsgi", "asgi"])]
    print(f"soak: wrk -t2 -c{connections} -d{seconds:g}s, RSS of the server tree every 1 s")
    head = f"{'bridge':<44}{'req/s':>8}{'requests':>10}{'non-2xx':>8}{'sock err':>9}"
    print(head + f"{'RSS first':>11}{'last':>9}{'window':>18}{'spread':>8}  result")
    for r in results:
        mib = 1024.0
        window = f"{r['rss_window_min_kib'] / mib:.1f}-{r['rss_window_max_kib'] / mib:.1f} MiB"
        print(
            f"{r['bridge']:<44}{r['rps']:>8.0f}{r['requests']:>10}{r['non_2xx']:>8}"
            f"{sum(r['socket_errors'].values()):>9}{r['rss_first_kib'] / mib:>9.1f}M"
            f"{r['rss_last_kib'] / mib:>8.1f}M{window:>18}{r['rss_window_spread']:>8.2%}"
            f"  {'PASS' if r['passed'] else 'FAIL'}"
        )
    print(
        f"pass: zero socket errors and non-2xx, RSS over the last {WINDOW} s within "
        f"{FLAT:.0%} (max/min), server alive at the end; server logs: {log}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    sys.exit(0 if all(r["passed"] for r in results) else 1)


if __name__ == "__main__":
    main()
