"""The shared loop for legacy code: ``asgibridge.shared_loop`` and ``asgibridge.run_shared``.

The main test is the issue's: 8 threads x 50 calls share one ``httpx.AsyncClient``
(``examples/shared_client.py``) against a loopback server that counts its
connections, with no error and no connection left open after the client closes.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import asgibridge
from asgibridge import SchedulerError, run_shared, shared_loop


class CountingServer:
    """A tiny HTTP/1.1 keep-alive server on its own loop thread that counts connections."""

    def __init__(self) -> None:
        self.accepted = 0
        self.open = 0
        self.requests = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="counting-server", daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                assert head.startswith(b"GET ")
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        finally:
            self.open -= 1
            writer.close()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> asyncio.Server:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            return server

        self.server = self._loop.run_until_complete(start())
        self._loop.run_forever()
        self.server.close()
        self._loop.run_until_complete(self.server.wait_closed())
        self._loop.close()

    def __enter__(self) -> CountingServer:
        self._thread.start()
        assert self._ready.wait(10), "the counting server did not start"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def wait_all_closed(self, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while self.open and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.open


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    with CountingServer() as server:
        yield server


def test_eight_threads_share_one_async_client(counting_server: CountingServer) -> None:
    from examples import shared_client

    url = f"http://127.0.0.1:{counting_server.port}/"
    try:
        counts = shared_client.crawl(url, threads=8, calls=50)
        client = shared_client.client()
    finally:
        shared_client.close()
    assert counts == {200: 400}
    assert counting_server.requests == 400
    # The one pool (max_connections=8) served everything: no connection per thread or call.
    assert 1 <= counting_server.accepted <= 8
    assert client.is_closed
    assert counting_server.wait_all_closed() == 0, "a connection was left open"


NOTES = pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are 3.11+")


@NOTES
def test_a_client_shared_through_async_to_sync_fails_with_the_way_out(
    counting_server: CountingServer,
) -> None:
    """The mistake run_shared exists for: the error names it and points at the fix."""
    import httpx

    from asgibridge import async_to_sync
    from asgibridge._core._loops import FOREIGN_LOOP_NOTE

    url = f"http://127.0.0.1:{counting_server.port}/"
    made: list[httpx.AsyncClient] = []

    async def make() -> None:
        made.append(httpx.AsyncClient())

    async def get() -> int:
        return (await made[0].get(url)).status_code

    async def close() -> None:
        await made[0].aclose()

    async_to_sync(make)()
    assert async_to_sync(get)() == 200  # its own thread's loop: fine, every time
    assert async_to_sync(get)() == 200
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            async_to_sync(get)()
        except BaseException as exc:  # examined below
            errors.append(exc)

    worker = threading.Thread(target=other_thread, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the call from another thread hung"
    async_to_sync(close)()
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError), errors
    assert "different" in str(errors[0])  # asyncio's own message is kept
    assert errors[0].__notes__ == [FOREIGN_LOOP_NOTE]
    assert "run_shared" in FOREIGN_LOOP_NOTE and "docs/shared_loop.md" in FOREIGN_LOOP_NOTE


@NOTES
def test_other_runtime_errors_get_no_note() -> None:
    from asgibridge import async_to_sync

    async def fail() -> None:
        raise RuntimeError("something else")

    with pytest.raises(RuntimeError, match="something else") as info:
        async_to_sync(fail)()
    assert not hasattr(info.value, "__notes__")


@NOTES
def test_the_note_is_added_once() -> None:
    from asgibridge import async_to_sync
    from asgibridge._core._loops import FOREIGN_LOOP_NOTE

    error = RuntimeError("<Lock> is bound to a different event loop")

    async def fail() -> None:
        raise error

    for _ in range(2):  # the same exception object raised through two calls
        with pytest.raises(RuntimeError):
            async_to_sync(fail)()
    assert error.__notes__ == [FOREIGN_LOOP_NOTE]


def test_every_thread_reaches_the_same_loop() -> None:
    async def running() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    with ThreadPoolExecutor(4) as pool:
        loops = set(pool.map(lambda _: run_shared(running), range(16)))
    assert loops == {shared_loop().loop}
    assert shared_loop().thread is not threading.current_thread()


def test_run_shared_takes_a_function_with_arguments_or_an_awaitable() -> None:
    async def add(a: int, b: int = 0) -> int:
        await asyncio.sleep(0)
        return a + b

    assert run_shared(add, 1, b=2) == 3
    assert run_shared(add(4, 5)) == 9
    with pytest.raises(TypeError, match="no further arguments"):
        coro = add(1)
        try:
            run_shared(coro, 2)
        finally:
            coro.close()


def test_u5_exceptions_propagate_with_their_type() -> None:
    async def boom() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        run_shared(boom)


def test_u3_context_changes_come_back() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    async def read_and_set() -> str:
        seen = var.get()
        var.set("from-loop")
        return seen

    var.set("from-caller")
    assert run_shared(read_and_set) == "from-caller"
    assert var.get() == "from-loop"


def test_calling_from_the_loop_thread_is_refused_with_the_fix() -> None:
    async def inner() -> None:
        return None

    async def outer() -> str:
        try:
            run_shared(inner)
        except SchedulerError as exc:
            return str(exc)
        return "no error"

    assert "await the coroutine directly" in run_shared(outer)


def test_a_closed_shared_loop_is_replaced() -> None:
    first = shared_loop()
    assert shared_loop() is first
    first.close()
    second = shared_loop()
    assert second is not first
    assert run_shared(asyncio.sleep, 0, "ok") == "ok"


def test_public_names() -> None:
    assert asgibridge.shared_loop is shared_loop
    assert asgibridge.run_shared is run_shared
    for name in ("Dispatcher", "run_shared", "shared_loop"):
        assert name in asgibridge.__all__
    from asgibridge import loop as loop_module

    assert sorted(loop_module.__all__) == ["run_shared", "shared_loop"]
