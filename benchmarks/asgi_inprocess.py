"""In process: a Starlette "hello" app through AsgiToWsgi and through a2wsgi.

Run with ``python -m benchmarks.asgi_inprocess`` (``--quick`` for a short run).

The WSGI application is called directly, as a threaded WSGI server would:
``T`` threads each build a fresh environ (shaped like gunicorn's), call the
app, iterate the response and close it, in a loop for a fixed time. Both
bridges get exactly the same threads, environ and app; rounds alternate
between them and the median round is reported, with the CPU time per
request of the whole process. Target: asgibridge at least 2x a2wsgi.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from asgibridge.asgi import AsgiToWsgi


async def hello(request: Request) -> Response:
    return PlainTextResponse("Hello, world!")


def starlette_app() -> Starlette:
    return Starlette(routes=[Route("/", hello)])


_ERRORS = io.StringIO()


def environ() -> dict[str, Any]:
    """A GET request environ with the keys gunicorn sets."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "RAW_URI": "/",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "gunicorn/27.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "54321",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "wrk",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": _ERRORS,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    if status[:3] != "200":
        raise RuntimeError(f"unexpected status {status}")
    return None


def run(app: Callable[..., Any], threads: int, seconds: float) -> tuple[float, float]:
    """Drive ``app`` from ``threads`` threads for ``seconds``; return (req/s, CPU us/req)."""
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(index: int) -> None:
        start.wait()
        deadline = stop_at[0]
        n = 0
        clock = time.perf_counter
        while clock() < deadline:
            result = app(environ(), _start_response)
            body = b"".join(result)
            if body != b"Hello, world!":
                raise RuntimeError(f"unexpected body {body!r}")
            close = getattr(result, "close", None)
            if close is not None:
                close()
            n += 1
        counts[index] = n

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    start.wait()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    total = sum(counts)
    return total / elapsed, cpu / total * 1e6


def _pick(result: dict[str, Any], what: str) -> float:
    ours = result["asgibridge"]
    if what == "vs a2wsgi":
        return float(ours[0] / result["a2wsgi"][0])
    return float(ours[0] if what == "rps" else ours[1])


def compare(baseline: str, argv: list[str], rounds: int) -> None:
    """``--baseline DIR``: asgibridge on this tree and on DIR, in the same run.

    Each round runs one process per tree (``--json``, one round, the order
    alternating), with ``asgibridge`` imported from that tree and this
    checkout's benchmark; a2wsgi runs in the same process as the reference
    for machine speed. Prints, per thread count, the medians over rounds.
    """
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    from .instructions import ROOT, tree_pythonpath

    trees = {"now": ROOT, "base": Path(baseline)}
    got: dict[str, list[dict[str, Any]]] = {k: [] for k in trees}
    with tempfile.TemporaryDirectory(prefix="asgi-inprocess-") as tmp:
        paths = {k: tree_pythonpath(t, Path(tmp)) for k, t in trees.items()}
        for r in range(rounds):
            for key in list(trees)[:: 1 if r % 2 == 0 else -1]:
                env = {**os.environ, "PYTHONPATH": paths[key]}
                cmd = [sys.executable, "-P", "-m", "benchmarks.asgi_inprocess", *argv]
                cmd += ["--json", "--rounds", "1"]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
                if out.returncode != 0:
                    raise RuntimeError(f"{key} round failed:\n{out.stderr[-3000:]}")
                got[key].append(json.loads(out.stdout.splitlines()[-1]))
    print(f"Starlette hello; now {ROOT} against base {baseline}; {rounds} rounds per tree")
    print("medians over rounds; now/base < 1 for req/s or > 1 for CPU: now slower")
    for threads in got["now"][0]:
        print(f"\n{threads} thread(s)   {'now':>9}{'base':>9}{'now/base':>10}")
        for label, what in (
            ("asgibridge req/s", "rps"),
            ("us CPU/req", "cpu"),
            ("/ a2wsgi req/s", "vs a2wsgi"),
        ):
            now = statistics.median(_pick(g[threads], what) for g in got["now"])
            base = statistics.median(_pick(g[threads], what) for g in got["base"])
            print(f"  {label:<17}{now:>9.2f}{base:>9.2f}{now / base:>10.3f}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print requests/second and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of one round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per bridge")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[8, 1], help="thread counts to measure"
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 second")
    parser.add_argument("--baseline", help="compare with the asgibridge package in this tree")
    parser.add_argument("--json", action="store_true", help="print the medians as one JSON line")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 1.0, 2
    if args.baseline:
        threads = [str(t) for t in args.threads]
        compare(args.baseline, ["--seconds", str(args.seconds), "--threads", *threads], args.rounds)
        return 0
    try:
        from a2wsgi import ASGIMiddleware
    except ImportError:
        print("a2wsgi is not installed: pip install a2wsgi", file=sys.stderr)
        return 2

    bridges: dict[str, Callable[..., Any]] = {
        "asgibridge": AsgiToWsgi(starlette_app()),
        "a2wsgi": ASGIMiddleware(starlette_app()),  # type: ignore[arg-type]
    }
    failed = False
    emit: dict[int, dict[str, tuple[float, float]]] = {}
    for threads in args.threads:
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in bridges}
        for app in bridges.values():
            run(app, threads, 0.3)  # warm-up: loop started, code paths hot
        for _ in range(args.rounds):
            for name, app in bridges.items():
                results[name].append(run(app, threads, args.seconds))
        if args.json:  # (req/s, CPU us/req) medians per bridge
            emit[threads] = {
                name: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v))
                for name, v in results.items()
            }
            continue
        print(f"\nStarlette hello, {threads} thread(s), {args.rounds} x {args.seconds:g}s")
        med: dict[str, float] = {}
        for name, rounds in results.items():
            med[name] = statistics.median(r for r, _ in rounds)
            cpu = statistics.median(c for _, c in rounds)
            spread = ", ".join(f"{r:.0f}" for r, _ in rounds)
            print(f"  {name:<10} {med[name]:>8.0f} req/s  {cpu:6.1f} us CPU/req  ({spread})")
        ratio = med["asgibridge"] / med["a2wsgi"]
        print(f"  asgibridge / a2wsgi = {ratio:.2f}x (target >= 2.00x)")
        failed |= ratio < 2.0
    closer = getattr(bridges["asgibridge"], "close", None)
    if closer is not None:
        closer()
    if args.json:
        print(json.dumps(emit))
        return 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
