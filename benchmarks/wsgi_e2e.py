"""End to end: a raw WSGI "hello" on uvicorn through each WSGI -> ASGI bridge, driven by wrk.

Run with ``python -m benchmarks.wsgi_e2e`` (``--quick`` for a short run).

Every contender runs under the same server and client: ``uvicorn`` with one
worker (``--workers 1``, access log off; the HTTP parser and event loop named
with ``--http``, h11 by default, and ``--loop``, asyncio by default, since
uvicorn's own defaults depend on what is installed) serving an app from
``examples/wsgi_hello.py`` on 127.0.0.1, and
``wrk -t1 -c32 -d5s`` over loopback. Contenders:

* ``asgibridge thread`` / ``asgibridge greenlet``: ``WsgiToAsgi`` in each mode;
* ``a2wsgi`` and ``asgiref``: the peers, wrapping the same WSGI app;
* ``native ASGI``: the same hello written as an ASGI app (the ceiling).

Each round starts a fresh server per contender, warms it up for one second
and measures; rounds interleave the contenders so that a noisy neighbour
hurts them alike, and the median round is reported with the total count of
non-2xx responses and socket errors over all rounds. Targets: asgibridge
thread >= 2.5x a2wsgi, greenlet >= 3.5x a2wsgi, zero non-2xx.

Needs ``wrk`` on PATH (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from . import _harness

ROOT = Path(__file__).resolve().parent.parent

CONTENDERS = {
    "native ASGI": "examples.wsgi_hello:native_asgi",
    "asgibridge thread": "examples.wsgi_hello:asgi_thread",
    "asgibridge greenlet": "examples.wsgi_hello:asgi_greenlet",
    "a2wsgi": "examples.wsgi_hello:a2wsgi_app",
    "asgiref": "examples.wsgi_hello:asgiref_app",
}


def run_one(
    app: str,
    seconds: float,
    connections: int,
    log: Path,
    loop: str = "asyncio",
    http: str = "h11",
) -> tuple[float, int, int]:
    port = _harness.free_port()
    stderr = log.open("ab")
    proc = subprocess.Popen(
        _harness.uvicorn_cmd(app, port, loop=loop, extra=("--http", http)),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=stderr,
    )
    try:
        _harness.wait_ready(port, proc, "uvicorn")
        _harness.wrk(port, 1, connections)  # warm-up
        return _harness.wrk(port, seconds, connections)
    finally:
        _harness.stop(proc)
        stderr.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", action="append", help="run only these contenders")
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="uvicorn's event loop (named, because uvicorn's 'auto' picks uvloop when installed)",
    )
    parser.add_argument(
        "--http",
        choices=["h11", "httptools"],
        default="h11",
        help="uvicorn's HTTP parser (named, because its 'auto' picks httptools when installed; "
        "the figures in docs/wsgi.md were measured on h11)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    contenders = {k: v for k, v in CONTENDERS.items() if not args.only or k in args.only}

    rps: dict[str, list[float]] = {name: [] for name in contenders}
    bad: dict[str, int] = dict.fromkeys(contenders, 0)
    errors: dict[str, int] = dict.fromkeys(contenders, 0)
    log = Path(tempfile.gettempdir()) / "asgibridge-wsgi-e2e.log"
    log.write_bytes(b"")
    for _ in range(rounds):
        for name, app in contenders.items():
            with log.open("ab") as f:
                f.write(f"==== {name} ({app})\n".encode())
            r, n, e = run_one(app, seconds, args.connections, log, args.loop, args.http)
            rps[name].append(r)
            bad[name] += n
            errors[name] += e

    med = {name: statistics.median(v) for name, v in rps.items()}
    native = med.get("native ASGI")
    a2 = med.get("a2wsgi")
    print(
        f"uvicorn --workers 1 --loop {args.loop} --http {args.http}, raw WSGI hello, "
        f"wrk -t1 -c{args.connections} -d{seconds:g}s, "
        f"{rounds} round(s), median"
    )
    print(f"{'contender':<22}{'req/s':>9}{'non-2xx':>9}{'errors':>8}{'/native':>9}{'/a2wsgi':>9}")
    for name in contenders:
        line = f"{name:<22}{med[name]:>9.0f}{bad[name]:>9}{errors[name]:>8}"
        line += f"{med[name] / native:>9.2f}" if native else f"{'':>9}"
        line += f"{med[name] / a2:>9.2f}" if a2 else f"{'':>9}"
        print(line)
    print("targets: asgibridge thread >= 2.5x a2wsgi, greenlet >= 3.5x a2wsgi, zero non-2xx")
    print(f"server logs (stderr): {log}")


if __name__ == "__main__":
    main()
