"""Dispatcher: per-request cost of choosing the child, over calling the child directly.

Run with ``python -m benchmarks.dispatch`` (``--quick`` for a short run).

ASGI side, in-process, one event loop: a trivial ASGI child called directly
(the floor), through an empty pass-through layer (``await child(...)``:
the cost of one more coroutine, which any router pays), through
:class:`asgibridge.Dispatcher` (four mounts plus a
default, the path hitting the longest), and through Starlette's ``Router`` +
``Mount`` (the peer most projects use today). Target: the Dispatcher adds at
most 2 us per request over the floor.

WSGI side (a WSGI server serving a dispatcher): a trivial WSGI child called
directly (the floor), through ``Dispatcher.as_wsgi()`` (the fast path: no
event loop), and through ``AsgiToWsgi(Dispatcher)`` (what the fast path
avoids: a round trip through the loop and a WsgiToAsgi worker).

Contenders are interleaved in short chunks, each chunk round starting with a
different one, so that load from other processes hits them alike. The table
prints the median chunk and the fastest chunk, in microseconds per request,
and each contender's excess over the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

from asgibridge import AsgiToWsgi, Dispatcher

START = {"type": "http.response.start", "status": 200, "headers": []}
BODY = {"type": "http.response.body", "body": b"ok"}


async def child(scope: Any, receive: Any, send: Any) -> None:
    await send(START)
    await send(BODY)


async def passthrough(scope: Any, receive: Any, send: Any) -> None:
    """The thinnest possible ASGI layer: what any router pays before it routes."""
    await child(scope, receive, send)


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Any) -> None:
    pass


def scope_for(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


def wsgi_child(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    return None


MOUNTS = ["/admin", "/static", "/api", "/api/v2"]
PATH = "/api/v2/items/42"


def asgi_contenders() -> dict[str, Any]:
    from starlette.routing import Mount, Router

    mounts = {m: child for m in MOUNTS}
    dispatcher = Dispatcher(mounts, default=child)
    router = Router([Mount(m, app=child) for m in reversed(MOUNTS)] + [Mount("", app=child)])
    return {
        "direct (floor)": child,
        "pass-through layer": passthrough,
        "Dispatcher": dispatcher,
        "starlette Mount": router,
    }


async def time_asgi_all(
    contenders: dict[str, Any], chunks: int, per_chunk: int
) -> dict[str, list[float]]:
    """Per-chunk us/request for each contender, the contenders interleaved chunk by chunk."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for app in contenders.values():  # warm up
        for _ in range(200):
            await app(scope_for(PATH), receive, send)
    for c in range(chunks):
        for name, app in rotate(contenders, c):
            t0 = time.perf_counter()
            for _ in range(per_chunk):
                await app(scope_for(PATH), receive, send)
            times[name].append((time.perf_counter() - t0) / per_chunk * 1e6)
    return times


def environ_for(path: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "bench",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": None,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def time_wsgi_all(contenders: dict[str, tuple[Any, int]], chunks: int) -> dict[str, list[float]]:
    """Per-chunk us/request for each WSGI contender, interleaved chunk by chunk."""
    import io

    def one(app: Any) -> None:
        environ = environ_for(PATH)
        environ["wsgi.input"] = io.BytesIO()
        result = app(environ, start_response)
        for _ in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()

    times: dict[str, list[float]] = {name: [] for name in contenders}
    for app, n in contenders.values():  # warm up
        for _ in range(min(200, n)):
            one(app)
    for c in range(chunks):
        for name, (app, n) in rotate(contenders, c):
            t0 = time.perf_counter()
            for _ in range(n):
                one(app)
            times[name].append((time.perf_counter() - t0) / n * 1e6)
    return times


def rotate(contenders: dict[str, Any], r: int) -> list[tuple[str, Any]]:
    """The contenders, starting at a different one each round (no one always goes first)."""
    items = list(contenders.items())
    k = r % len(items)
    return items[k:] + items[:k]


def table(title: str, results: dict[str, list[float]], floor: str) -> None:
    chunks = len(next(iter(results.values())))
    print(f"\n{title}\n  us per request over {chunks} interleaved chunks: median, and min")
    base = statistics.median(results[floor])
    base_min = min(results[floor])
    for name, rounds in results.items():
        med, low = statistics.median(rounds), min(rounds)
        extra = (
            ""
            if name == floor
            else f"   +{med - base:6.2f} / +{low - base_min:5.2f} over the floor"
        )
        print(f"  {name:<28} {med:8.2f} {low:8.2f}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run")
    args = parser.parse_args()
    chunks, per_chunk, per_loop_chunk = (30, 1_000, 50) if args.quick else (200, 2_000, 100)

    asgi = asgi_contenders()
    results = asyncio.run(time_asgi_all(asgi, chunks, per_chunk))
    table(f"ASGI: path {PATH!r}, {len(MOUNTS)} mounts + default", results, "direct (floor)")

    dispatcher = Dispatcher({m: wsgi_child for m in MOUNTS}, default=wsgi_child)
    fast = dispatcher.as_wsgi(lifespan="off")
    through_loop = AsgiToWsgi(dispatcher, lifespan="off")
    wsgi: dict[str, tuple[Any, int]] = {
        "direct (floor)": (wsgi_child, per_chunk),
        "Dispatcher.as_wsgi()": (fast, per_chunk),
        "AsgiToWsgi(Dispatcher)": (through_loop, per_loop_chunk),
    }
    try:
        wresults = time_wsgi_all(wsgi, max(10, chunks // 4))
    finally:
        fast.close()
        through_loop.close()
    table("WSGI server side: a WSGI child under a Dispatcher", wresults, "direct (floor)")


if __name__ == "__main__":
    main()
