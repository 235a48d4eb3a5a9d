"""End to end: an ASGI "hello" served by gunicorn through AsgiToWsgi, a2wsgi, and raw WSGI.

Run with ``python -m benchmarks.asgi_e2e`` (``--quick`` for a short run).

Every contender runs under the same server: gunicorn, one worker, gthread
worker class with 8 threads, bound to 127.0.0.1. ``wrk -t1 -c8`` drives it
over loopback. The listening socket is made here and handed to gunicorn as
``fd://N``, so there is no port race. Contenders are interleaved round by
round (so a noisy neighbour hurts all alike) and the median round is
reported. Targets: asgibridge at least 2x a2wsgi; the ratio to raw WSGI is
reported (a2wsgi reaches about 0.44 here). A fourth contender, the
"hand-off floor", is the raw WSGI app plus one round trip to a background
event loop that creates one task, with no ASGI at all: the ceiling for any
bridge that runs lifespan and all requests on one loop (rule A1). The fifth,
the "batched floor", is the same round trip with one loop wake-up shared by
the requests that arrive together, as asgibridge does: the lower, truer floor.

Needs ``wrk`` on PATH (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
from pathlib import Path

from . import _harness

ROOT = Path(__file__).resolve().parent.parent


def _gunicorn_version() -> tuple[int, ...]:
    from importlib.metadata import version

    return tuple(int(p) for p in version("gunicorn").split(".")[:2] if p.isdigit())


# gunicorn 25.1+ opens a control socket at a fixed path in $HOME; not needed here.
_NO_CONTROL_SOCKET = ["--no-control-socket"] if _gunicorn_version() >= (25, 1) else []

CONTENDERS = {
    "asgibridge": "examples.asgi_hello:asgibridge_app",
    "a2wsgi": "examples.asgi_hello:a2wsgi_app",
    "raw WSGI": "examples.asgi_hello:wsgi_hello",
    "hand-off floor": "examples.asgi_hello:handoff_floor",
    "batched floor": "examples.asgi_hello:handoff_floor_batched",
}


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker_cpu(master: int) -> float | None:
    """CPU seconds (user + system) used so far by gunicorn's worker, where /proc tells."""
    try:
        with open(f"/proc/{master}/task/{master}/children") as f:
            worker = int(f.read().split()[0])
        with open(f"/proc/{worker}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError, ValueError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    target: str, seconds: float, connections: int, threads: int
) -> tuple[float, float | None]:
    """Serve ``target`` with gunicorn, warm up, run wrk.

    Returns (requests/second, worker CPU microseconds per request or None).
    """
    sock = _listen()
    port = sock.getsockname()[1]
    cmd = _harness.gunicorn_gthread_cmd(
        target, f"fd://{sock.fileno()}", threads=threads, extra=_NO_CONTROL_SOCKET
    )
    proc = subprocess.Popen(cmd, cwd=ROOT, pass_fds=(sock.fileno(),))
    try:
        _harness.wait_ready(port, proc, "gunicorn")
        _harness.wrk(port, 1.0, connections)  # warm-up
        cpu0 = _worker_cpu(proc.pid)
        rps, non2xx, errors = _harness.wrk(port, seconds, connections)
        if non2xx or errors:
            raise RuntimeError(f"wrk saw {non2xx} non-2xx responses and {errors} socket errors")
        cpu1 = _worker_cpu(proc.pid)
        per_request = None
        if cpu0 is not None and cpu1 is not None:
            per_request = (cpu1 - cpu0) / (rps * seconds) * 1e6
        return rps, per_request
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait(timeout=5)
        sock.close()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print requests/second and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender")
    parser.add_argument("--connections", type=int, default=8, help="wrk -c")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn gthread threads")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 seconds")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.quick:
        args.seconds, args.rounds = 2.0, 1
    results: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    cpu: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    ratios: list[float] = []
    print(
        f"gunicorn -w 1 -k gthread --threads {args.threads}; wrk -t1 -c{args.connections} "
        f"-d{args.seconds:g}s; {args.rounds} round(s); cpus={os.cpu_count()}"
    )
    for r in range(args.rounds):
        for name, target in CONTENDERS.items():
            rps, per_request = measure(target, args.seconds, args.connections, args.threads)
            results[name].append(rps)
            if per_request is not None:
                cpu[name].append(per_request)
            shown = f"{per_request:6.0f} us CPU/req" if per_request is not None else ""
            print(f"  round {r + 1}: {name:<14} {rps:>9.0f} req/s {shown}", flush=True)
        ratios.append(results["asgibridge"][-1] / results["a2wsgi"][-1])
    med = {name: statistics.median(v) for name, v in results.items()}
    print("\nmedian requests/second (worker CPU per request)")
    for name, value in med.items():
        shown = f"({statistics.median(cpu[name]):.0f} us)" if cpu[name] else ""
        print(f"  {name:<14} {value:>9.0f} {shown}")
    ours, peer, raw = med["asgibridge"], med["a2wsgi"], med["raw WSGI"]
    print(f"\nasgibridge / a2wsgi   = {ours / peer:.2f}x  (target >= 2.00x)")
    print(f"  median of per-round ratios: {statistics.median(ratios):.2f}x")
    print(f"asgibridge / raw WSGI = {ours / raw:.2f}")
    print(f"a2wsgi / raw WSGI     = {peer / raw:.2f}")
    floor = med.get("hand-off floor")
    if floor is not None:
        print(
            f"hand-off floor / raw WSGI = {floor / raw:.2f}  (one loop round trip and one "
            "task, no ASGI: the ceiling for any bridge that keeps every request on one loop)"
        )
    batched = med.get("batched floor")
    if batched is not None:
        print(
            f"batched floor / raw WSGI  = {batched / raw:.2f}  (the same, with loop wake-ups "
            "shared by requests that arrive together, as asgibridge does)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
