"""WsgiToAsgi in-process: a Flask "hello" through each bridge against a direct WSGI call.

Run with ``python -m benchmarks.wsgi_inprocess`` (``--quick`` for a short run).

Every contender is driven the same way, by a minimal in-process ASGI
"server": a scope copied from a template, a ``receive`` that returns the
(empty) request body, and a ``send`` that checks the status and drops the
body. Two measurements per contender, both in microseconds per request:

* **throughput**: 16 requests in flight (16 coroutines, each sending its
  requests back to back, like 16 keep-alive connections), total time /
  requests;
* **latency**: one request at a time.

The direct WSGI baseline calls ``app(environ, start_response)`` and consumes
the iterable, one request at a time (a WSGI server cannot do better on one
interpreter: the GIL serialises the app anyway). It is measured two ways:

* ``direct`` (the strict baseline, used for the ratios and the targets):
  the environ is a copy of a prebuilt dict, so the baseline pays nothing
  for turning a request into an environ;
* ``direct+environ``: the environ is built per request from the same ASGI
  scope the bridges get (with asgibridge's ``EnvironBuilder``), as any server
  must build one from its request. Its ratio column shows how much of the
  bridges' overhead is the bridging itself rather than the translation.

Two "floor" contenders (see ``floor_bridge``) do only what no bridge can skip
(build the environ, call the app, send two messages), inline and through a
greenlet, with no checks at all. They bound from above what any bridge of
that shape can reach in the same run.

The ratio is direct / bridged time (1.0 = no overhead; higher is better).
Rounds interleave the contenders with direct runs, and each ratio is taken
against the direct runs just before and after it, so that a noisy neighbour
or a drifting clock speed hurts both sides alike; the median over rounds is
reported.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from flask import Flask

from asgibridge.wsgi import WsgiToAsgi
from tests.support.drivers import asgi_call
from tests.support.scopes import make_scope

CONCURRENCY = 16

flask_app = Flask("bench")


@flask_app.get("/")
def hello() -> str:
    return "Hello, World!"


SCOPE: dict[str, Any] = make_scope(
    client=("127.0.0.1", 50000),
    headers=[
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"bench"),
        (b"accept", b"*/*"),
    ],
)

ENVIRON: dict[str, Any] = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/",
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "50000",
    "HTTP_HOST": "127.0.0.1:8000",
    "HTTP_USER_AGENT": "bench",
    "HTTP_ACCEPT": "*/*",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr,
    "wsgi.multithread": True,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}

REQUEST = {"type": "http.request", "body": b"", "more_body": False}
DISCONNECT = {"type": "http.disconnect"}

ASGIApp = Callable[..., Awaitable[None]]


def floor_bridge(greenlet: bool) -> ASGIApp:
    """A WSGI-to-ASGI "bridge" that does only the work no bridge can skip.

    Not a usable bridge: it checks nothing (no status or header validation,
    no Content-Length handling, no streaming, no request body, no
    disconnects, no errors). It builds the environ with asgibridge's own
    builder, calls the app, collects the whole body, and sends the two ASGI
    messages with naively encoded headers; with ``greenlet=True`` the app
    runs through ``run_in_greenlet``, as in greenlet mode. Its ratio is the
    ceiling for any bridge with the same shape on this machine, measured in
    the same run, and the gap between it and asgibridge is what
    conformance costs.
    """
    from asgibridge._core import run_in_greenlet

    try:
        from asgibridge._codec import EnvironBuilder
    except ImportError:  # a tree from before the layout of issue 10 (--baseline)
        from asgibridge._environ import EnvironBuilder  # type: ignore[no-redef,import-not-found,unused-ignore]

    builder = EnvironBuilder(errors=io.StringIO(), multithread=True)
    app: Any = flask_app.wsgi_app

    async def bridge(scope: dict[str, Any], receive: Any, send: Any) -> None:
        environ = builder.build(scope)
        environ["wsgi.input"] = io.BytesIO(b"")
        await receive()
        started: list[Any] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            started.append((status, headers))

        def run() -> list[bytes]:
            body = app(environ, start_response)
            try:
                return list(body)
            finally:
                body.close()

        chunks = await run_in_greenlet(run) if greenlet else run()
        status, headers = started[-1]
        await send(
            {
                "type": "http.response.start",
                "status": int(status[:3]),
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    return bridge


def contenders() -> dict[str, Callable[[], ASGIApp]]:
    """Factories, so that each round starts from a fresh bridge (and pool)."""
    from a2wsgi import WSGIMiddleware
    from asgiref.wsgi import WsgiToAsgi as AsgirefWsgiToAsgi

    return {
        "floor, inline": lambda: floor_bridge(greenlet=False),
        "floor, greenlet": lambda: floor_bridge(greenlet=True),
        "asgibridge thread": lambda: WsgiToAsgi(flask_app),
        "asgibridge greenlet": lambda: WsgiToAsgi(flask_app, executor="greenlet"),
        "a2wsgi": lambda: WSGIMiddleware(flask_app),  # type: ignore[arg-type]
        "asgiref": lambda: AsgirefWsgiToAsgi(flask_app),  # type: ignore[no-untyped-call]
    }


async def one_request(app: ASGIApp) -> None:
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if done:
            return DISCONNECT
        done = True
        return REQUEST

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"unexpected status {message['status']}")

    await app(dict(SCOPE), receive, send)


async def check(app: ASGIApp) -> None:
    """One request whose response is checked in full."""
    result = await asgi_call(app, dict(SCOPE))
    if result.status != 200 or result.body != b"Hello, World!":
        raise RuntimeError(f"bad response {result.messages!r}")


def bridged_round(factory: Callable[[], ASGIApp], n: int, concurrency: int) -> float:
    async def main() -> float:
        app = factory()
        await check(app)
        per = n // concurrency

        async def connection(count: int) -> None:
            for _ in range(count):
                await one_request(app)

        await asyncio.gather(*(connection(max(10, per // 4)) for _ in range(concurrency)))
        t0 = time.perf_counter()
        await asyncio.gather(*(connection(per) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        aclose = getattr(app, "aclose", None)
        if aclose is not None:
            await aclose()
        executor = getattr(app, "executor", None)
        if executor is not None and hasattr(executor, "shutdown"):
            executor.shutdown(wait=False)
        return elapsed / (per * concurrency) * 1e6

    return asyncio.run(main())


def direct_round(n: int, from_scope: bool = False) -> float:
    try:
        from asgibridge._codec import EnvironBuilder
    except ImportError:  # a tree from before the layout of issue 10 (--baseline)
        from asgibridge._environ import EnvironBuilder  # type: ignore[no-redef,import-not-found,unused-ignore]

    app = flask_app.wsgi_app
    status: list[str] = []

    def start_response(s: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(s)
        return None

    # The environ builder WsgiToAsgi uses, with its per-server template kept.
    builder = EnvironBuilder(errors=io.StringIO(), multithread=True)

    def once() -> None:
        if from_scope:
            environ = builder.build(SCOPE)
        else:
            environ = dict(ENVIRON)
        environ["wsgi.input"] = io.BytesIO(b"")
        body = app(environ, start_response)
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    for _ in range(max(1, n // 10)):
        once()
    status.clear()
    t0 = time.perf_counter()
    for _ in range(n):
        once()
    elapsed = time.perf_counter() - t0
    if status[0] != "200 OK":
        raise RuntimeError(f"unexpected status {status[0]}")
    return elapsed / n * 1e6


def compare(baseline: str, n: int, rounds: int) -> None:
    """``--baseline DIR``: asgibridge's two modes on this tree and on DIR, in the same run.

    Each round runs one process per tree (``--json``, one round, the order
    alternating), with ``asgibridge`` imported from that tree and this
    checkout's benchmark. Each process divides its bridged times by its own
    direct runs, so the two trees are compared on ratios, not raw times.
    """
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    from .instructions import ROOT, tree_pythonpath

    names = ["asgibridge thread", "asgibridge greenlet"]
    trees = {"now": ROOT, "base": Path(baseline)}
    got: dict[str, list[dict[str, Any]]] = {k: [] for k in trees}
    with tempfile.TemporaryDirectory(prefix="wsgi-inprocess-") as tmp:
        paths = {k: tree_pythonpath(t, Path(tmp)) for k, t in trees.items()}
        for r in range(rounds):
            for key in list(trees)[:: 1 if r % 2 == 0 else -1]:
                env = {**os.environ, "PYTHONPATH": paths[key]}
                cmd = [sys.executable, "-P", "-m", "benchmarks.wsgi_inprocess", "--json"]
                cmd += ["--rounds", "1", "-n", str(n), *(f"--only={x}" for x in names)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
                if out.returncode != 0:
                    raise RuntimeError(f"{key} round failed:\n{out.stderr[-3000:]}")
                got[key].append(json.loads(out.stdout.splitlines()[-1]))
    print(f"Flask hello, in-process; now {ROOT} against base {baseline}; {n} requests x {rounds}")
    print("time / direct time, median over rounds (lower is better); now/base > 1: now slower")
    columns = f"{'now':>10}{'base':>8}{'now/base':>10}"
    print(f"{'':<22}{'c=16':>10}{'':18}{'c=1':>10}\n{'contender':<22}{columns}{columns}")
    for name in names:
        row = f"{name:<22}"
        for kind in ("thr", "lat"):
            now = statistics.median(g[kind][name] for g in got["now"])
            base = statistics.median(g[kind][name] for g in got["base"])
            row += f"{now:>10.2f}{base:>8.2f}{now / base:>10.3f}"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("-n", type=int, default=None, help="requests per round")
    parser.add_argument("--only", action="append", help="run only these contenders")
    parser.add_argument("--baseline", help="compare with the asgibridge package in this tree")
    parser.add_argument("--json", action="store_true", help="print the medians as one JSON line")
    args = parser.parse_args()
    n = args.n or (1600 if args.quick else 3200)
    rounds = args.rounds or (5 if args.quick else 11)
    if args.baseline:
        compare(args.baseline, n, args.rounds or (3 if args.quick else 7))
        return

    factories = contenders()
    if args.only:
        factories = {k: v for k, v in factories.items() if k in args.only}
    direct: list[float] = []
    direct_env: list[float] = []
    thr: dict[str, list[float]] = {name: [] for name in factories}
    lat: dict[str, list[float]] = {name: [] for name in factories}
    for _ in range(rounds):
        # Each contender is bracketed by direct runs: its ratio uses the mean
        # of the two, so drift in machine speed cancels out.
        before = direct_round(n)
        direct.append(before)
        direct_env.append(direct_round(n, from_scope=True))
        for name, factory in factories.items():
            t = bridged_round(factory, n, CONCURRENCY)
            la = bridged_round(factory, max(200, n // 4), 1)
            after = direct_round(n)
            ref = (before + after) / 2
            thr[name].append(t / ref)
            lat[name].append(la / ref)
            before = after

    if args.json:  # bridged / direct time, per contender
        med = {
            k: {name: statistics.median(v[name]) for name in factories}
            for k, v in [("thr", thr), ("lat", lat)]
        }
        print(json.dumps({"direct_us": statistics.median(direct), **med}))
        return
    d = statistics.median(direct)
    de = statistics.median(direct_env)
    print(f"Flask hello, in-process; {n} requests x {rounds} rounds")
    print(
        f"{'contender':<22}{'us/req c=16':>12}{'req/s':>9}{'ratio':>7}{'+env':>7}"
        f"{'us/req c=1':>12}{'ratio':>7}"
    )
    for name, v in (("direct WSGI call", d), ("direct+environ", de)):
        print(
            f"{name:<22}{v:>12.1f}{1e6 / v:>9.0f}{d / v:>7.2f}{de / v:>7.2f}{v:>12.1f}{d / v:>7.2f}"
        )
    for name in factories:
        t = statistics.median(thr[name])  # bridged / direct, per round
        la = statistics.median(lat[name])
        print(
            f"{name:<22}{t * d:>12.1f}{1e6 / (t * d):>9.0f}{1 / t:>7.2f}{de / (t * d):>7.2f}"
            f"{la * d:>12.1f}{1 / la:>7.2f}"
        )
    print(
        "ratio = direct / bridged time per request: the median over rounds of each round's\n"
        "ratio (the direct runs just before and after); us/req = ratio applied to the\n"
        "median direct time. +env = (direct+environ) / bridged.\n"
        "Targets, on 'ratio' at c=16: thread >= 0.45, greenlet >= 0.75."
    )


if __name__ == "__main__":
    main()
