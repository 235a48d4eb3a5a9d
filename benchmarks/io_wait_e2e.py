"""End to end, thread mode: a WSGI app that waits on I/O, by ``active_workers``.

Run with ``python -m benchmarks.io_wait_e2e`` (``--quick``: 3 rounds of 1 s;
``--wait-ms``, ``--cpu-us``: what each request does; ``--baseline DIR`` to run
the contenders from another source tree too; ``--only granian``/``uvicorn``).

The app spins for ``--cpu-us`` microseconds, then sleeps ``--wait-ms``
milliseconds in ``time.sleep`` (as a database call would: the GIL is free
while it waits), then answers "hello". ``WsgiToAsgi`` serves it in thread
mode with ``active_workers`` 1, 2 (the default) and 40 (= ``max_workers``:
every request starts at once, as a plain thread pool would), on granian and
uvicorn, one worker each, driven by ``wrk --latency`` at ``-c4`` (light load)
and ``-c32`` (heavy). A bridge that keeps too few requests running shows up
as lower req/s and higher latency than the ``40`` row; one that runs too many
shows up on the CPU-light apps of ``granian_e2e`` instead. Reported: median
req/s, its median per-round ratio to the ``40`` row (the floor of this
benchmark: nothing queues), and median p50/p99 latency.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from . import _harness
from .granian_e2e import ROOT, command

#: The apps, written to a temporary module so that a baseline tree serves them too.
APPS = """
import os, time
from asgibridge import WsgiToAsgi

WAIT = float(os.environ["IO_WAIT_MS"]) / 1e3
CPU = float(os.environ["IO_CPU_US"]) / 1e6
BODY = [b"Hello, World!"]
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "13")]


def app(environ, start_response):
    if CPU:
        end = time.perf_counter() + CPU
        while time.perf_counter() < end:
            pass
    time.sleep(WAIT)
    start_response("200 OK", HEADERS)
    return BODY


aw1 = WsgiToAsgi(app, max_workers=40, active_workers=1)
aw2 = WsgiToAsgi(app, max_workers=40, active_workers=2)
aw40 = WsgiToAsgi(app, max_workers=40, active_workers=40)
"""

CONTENDERS = {"active_workers=40": "aw40", "active_workers=1": "aw1", "active_workers=2": "aw2"}
SERVERS = {"granian": "granian-asgi", "uvicorn": "uvicorn"}


def _latency(out: str, pct: str) -> float:
    """A latency percentile (ms) from ``wrk --latency`` output."""
    m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if m is None:
        raise RuntimeError(f"no {pct}% latency in wrk output:\n{out}")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1 s")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--wait-ms", type=float, default=1.0)
    parser.add_argument("--cpu-us", type=float, default=50.0)
    parser.add_argument("--connections", type=int, action="append", help="default: 4 and 32")
    parser.add_argument("--only", action="append", choices=sorted(SERVERS))
    parser.add_argument("--baseline", type=Path, help="another source tree, run alongside")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    rounds = args.rounds or (3 if args.quick else 6)
    seconds = args.seconds or (1.0 if args.quick else 2.0)
    conns = args.connections or [4, 32]
    trees = {"": ROOT}
    if args.baseline is not None:
        trees[" @base"] = args.baseline.resolve()
    apps_dir = Path(tempfile.mkdtemp(prefix="asgibridge-io-wait-"))
    (apps_dir / "io_wait_apps.py").write_text(APPS)
    log = Path(tempfile.gettempdir()) / "asgibridge-io-wait-e2e.log"
    log.write_bytes(b"")
    env = {**os.environ, "IO_WAIT_MS": str(args.wait_ms), "IO_CPU_US": str(args.cpu_us)}
    print(
        f"app: {args.cpu_us:g} us CPU + {args.wait_ms:g} ms time.sleep per request; one worker "
        f"per server; wrk -t1 --latency; {rounds} rounds of {seconds:g} s; 2 cores"
    )
    for name, server in SERVERS.items():
        if args.only and name not in args.only:
            continue
        procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        err = log.open("ab")
        try:
            for suffix, tree in trees.items():
                for label, attr in CONTENDERS.items():
                    port = _harness.free_port()
                    cmd = command(server, f"io_wait_apps:{attr}", port, "auto")
                    proc = subprocess.Popen(
                        cmd,
                        cwd=apps_dir,
                        env={**env, "PYTHONPATH": f"{tree}{os.pathsep}{apps_dir}"},
                        stdout=err,
                        stderr=err,
                        start_new_session=True,
                    )
                    procs[label + suffix] = (proc, port)
            for label, (proc, port) in procs.items():
                _harness.wait_ready(port, proc, f"{name} {label}")
                _harness.run_wrk(port, 1.0, max(conns))  # warm-up (and grow, if it will)
            for c in conns:
                _measure(name, c, procs, rounds, seconds)
        finally:
            for proc, _ in procs.values():
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(15)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)
            err.close()
    print(f"server logs: {log}")


def _measure(
    name: str,
    connections: int,
    procs: dict[str, tuple[subprocess.Popen[bytes], int]],
    rounds: int,
    seconds: float,
) -> None:
    keys = list(procs)
    rps: dict[str, list[float]] = {k: [] for k in keys}
    p50: dict[str, list[float]] = {k: [] for k in keys}
    p99: dict[str, list[float]] = {k: [] for k in keys}
    bad = dict.fromkeys(keys, 0)
    for r in range(rounds):
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            out = _harness.run_wrk(procs[key][1], seconds, connections, extra=["--latency"])
            rps[key].append(_harness.wrk_rps(out))
            p50[key].append(_latency(out, "50"))
            p99[key].append(_latency(out, "99"))
            bad[key] += _harness.wrk_non2xx(out) + sum(_harness.wrk_socket_errors(out).values())
    base = keys[0]
    print(f"\n{name}, wrk -c{connections}:")
    print("| contender | req/s | of active_workers=40 | p50 ms | p99 ms | bad |")
    print("|---|---:|---:|---:|---:|---:|")
    for key in keys:
        ratio = statistics.median(a / b for a, b in zip(rps[key], rps[base], strict=True))
        print(
            f"| {key} | {statistics.median(rps[key]):,.0f} | {ratio:.2f} | "
            f"{statistics.median(p50[key]):.2f} | {statistics.median(p99[key]):.2f} | "
            f"{bad[key]} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
