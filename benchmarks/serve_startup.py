"""asgibridge serve: time to the first answered request, against starting the server directly.

Run with ``python -m benchmarks.serve_startup`` (``--quick`` for fewer rounds).

Each pair starts the same app on the same server twice, once directly and
once through ``asgibridge serve``, and measures from process start to the
first ``200`` on ``GET /``. The pairs are interleaved over several rounds and
the median is printed with the difference, which is what ``asgibridge serve``
adds (target: under 1 s).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._harness import free_port, wait_ready

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
_NO_CONTROL = ["--no-control-socket"]

PAIRS: dict[str, tuple[list[str], list[str]]] = {
    "flask on uvicorn": (
        [sys.executable, "-m", "uvicorn", "examples.flask_app:asgi_app", "--port", "{port}"],
        [sys.executable, "-m", "asgibridge", "serve", "examples.flask_app:app", "--port", "{port}"],
    ),
    "ASGI hello on gunicorn": (
        [
            str(BIN / "gunicorn"),
            *("-k", "gthread", "--threads", "8", "-b", "127.0.0.1:{port}", *_NO_CONTROL),
            "examples.asgi_hello:asgibridge_app",
        ],
        [
            str(BIN / "asgibridge"),
            *("serve", "examples.asgi_hello:hello", "--server", "gunicorn", "--port", "{port}"),
            *("--", *_NO_CONTROL),
        ],
    ),
}


def time_start(command: list[str]) -> float:
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in command]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_ready(port, proc, argv[0], timeout=60)
        return time.perf_counter() - t0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    for name, (direct, serve) in PAIRS.items():
        d: list[float] = []
        s: list[float] = []
        for _ in range(rounds):
            d.append(time_start(direct))
            s.append(time_start(serve))
        md, ms = statistics.median(d), statistics.median(s)
        print(
            f"{name:<22} direct {md * 1000:7.0f} ms   asgibridge serve {ms * 1000:7.0f} ms   "
            f"difference {(ms - md) * 1000:+6.0f} ms   (median of {rounds})"
        )


if __name__ == "__main__":
    main()
