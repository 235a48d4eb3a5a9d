"""No reference cycles per request: everything a request allocates is freed by refcounting.

A cycle per request is not a leak (the cyclic GC frees it eventually), but
at thousands of requests per second it feeds the GC a steady stream of
garbage, and each collection walks every young object. Measured before the
fix, the WsgiToAsgi thread mode paid ~15 cyclic objects per request.

Each test runs some requests to warm up, then runs more with
``gc.DEBUG_SAVEALL`` so that whatever a collection would have freed is kept
in ``gc.garbage`` instead, and asserts that none of it came from a request.
"""

from __future__ import annotations

import asyncio
import gc
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from asgibridge import AsgiToWsgi, WsgiToAsgi, async_to_sync, sync_to_async
from tests.support.scopes import make_scope


def forget_garbage() -> None:
    """Free every unreachable cycle now, for real, then go back to saving them.

    Under ``gc.DEBUG_SAVEALL`` a collection only moves cycles into
    ``gc.garbage``; clearing that list makes them unreachable again, so the
    next collection would report them a second time. Hence: saving off, list
    cleared, collect, saving on.
    """
    gc.set_debug(0)
    gc.garbage.clear()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)


@pytest.fixture
def garbage() -> Iterator[Callable[[], list[str]]]:
    """Collect, then save cyclic garbage; the callable returns its type names."""
    forget_garbage()

    def collect() -> list[str]:
        gc.collect()
        return sorted({type(o).__name__ for o in gc.garbage})

    try:
        yield collect
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def hello_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


async def hello_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


SCOPE: dict[str, Any] = make_scope(
    asgi={"version": "3.0"},
    headers=[(b"host", b"127.0.0.1")],
    client=("127.0.0.1", 5000),
)


async def _wsgi_requests(bridge: WsgiToAsgi, n: int) -> None:
    async def one() -> None:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await bridge(dict(SCOPE), receive, send)
        assert sent[0]["status"] == 200
        assert sent[-1]["body"] == b"hello"

    # Concurrent, so that thread mode queues requests behind busy workers too.
    await asyncio.gather(*(one() for _ in range(n)))


def test_wsgi_to_asgi_request_leaves_no_cycles(
    executor: Any, garbage: Callable[[], list[str]]
) -> None:
    async def main() -> list[str]:
        async with WsgiToAsgi(hello_wsgi, executor=executor) as bridge:
            await _wsgi_requests(bridge, 20)
            forget_garbage()
            await _wsgi_requests(bridge, 20)
            return garbage()

    assert asyncio.run(main()) == []


def test_asgi_to_wsgi_request_leaves_no_cycles(garbage: Callable[[], list[str]]) -> None:
    bridge = AsgiToWsgi(hello_asgi, lifespan="off")

    def request() -> None:
        statuses: list[str] = []
        environ = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        result = bridge(environ, lambda status, headers, exc_info=None: statuses.append(status))
        try:
            assert b"".join(result) == b"hello"
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        assert statuses == ["200 OK"]

    try:
        for _ in range(20):
            request()
        forget_garbage()
        for _ in range(20):
            request()
        assert garbage() == []
    finally:
        bridge.close()


def test_sync_calls_leave_no_cycles(garbage: Callable[[], list[str]]) -> None:
    # Loops are set up (and cached per thread) by the warm-up round; only the
    # measured round's garbage counts.
    def work() -> int:
        return 1

    async def coro() -> int:
        return 2

    async def calls() -> None:
        for _ in range(10):
            assert await sync_to_async(work)() == 1
            assert await sync_to_async(work, thread_sensitive=False)() == 1
            assert await sync_to_async(work, executor="greenlet")() == 1
            assert await sync_to_async(lambda: async_to_sync(coro)())() == 2

    async def main() -> list[str]:
        await calls()
        forget_garbage()
        await calls()
        return garbage()

    assert asyncio.run(main()) == []
    for _ in range(10):
        assert async_to_sync(coro)() == 2
    forget_garbage()
    for _ in range(10):
        assert async_to_sync(coro)() == 2
    assert garbage() == []
