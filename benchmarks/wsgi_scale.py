"""Scale, greenlet mode: 10,000 concurrent WSGI requests that each wait 1 s, in-process.

Run with ``python -m benchmarks.wsgi_scale`` (``-n 2000`` for a short run).

Each request runs a WSGI app that calls ``async_to_sync(asyncio.sleep)(1)``
and answers. All requests are started at once (one asyncio task each, like a
server's connection tasks) on ``WsgiToAsgi(app, executor="greenlet")``; in
greenlet mode the wait switches back to the loop, so no thread is involved
and the requests overlap. The thread count is sampled every 10 ms while they
run. Targets: all 10,000 finish within 3 s, and no thread is created.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from asgibridge.sync import async_to_sync
from asgibridge.wsgi import WsgiToAsgi
from tests.support.scopes import make_scope

SCOPE: dict[str, Any] = make_scope(
    asgi={"version": "3.0"},
    headers=[(b"host", b"bench")],
    client=("127.0.0.1", 1),
    server=("127.0.0.1", 80),
)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    async_to_sync(asyncio.sleep)(1)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
    return [b"done"]


async def one(bridge: WsgiToAsgi) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await bridge(dict(SCOPE), receive, send)
    return status


async def run(n: int) -> tuple[float, int, int, int, list[int]]:
    bridge = WsgiToAsgi(app, executor="greenlet")
    before = threading.active_count()
    peak = before
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, threading.active_count())
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    start = time.monotonic()
    statuses = await asyncio.gather(*(one(bridge) for _ in range(n)))
    elapsed = time.monotonic() - start
    done.set()
    await sampler
    return elapsed, before, peak, threading.active_count(), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="concurrent requests")
    args = parser.parse_args()
    elapsed, before, peak, after, statuses = asyncio.run(run(args.n))
    ok = sum(1 for s in statuses if s == 200)
    print(f"greenlet mode: {args.n} concurrent requests, each async_to_sync(asyncio.sleep)(1)")
    print(f"  all finished in {elapsed:.2f} s; {ok}/{args.n} answered 200")
    print(f"  threads: {before} before, {peak} peak while running, {after} after")
    verdict = elapsed <= 3.0 and ok == args.n and peak == before
    print(f"target (<= 3 s, no extra threads): {'met' if verdict else 'NOT met'}")


if __name__ == "__main__":
    main()
