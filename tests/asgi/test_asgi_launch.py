"""How ``AsgiToWsgi`` wakes its loop to start request tasks (:mod:`asgibridge._asgi._launch`).

Where the loop can watch an eventfd, a WSGI thread wakes it with one
``eventfd_write``; elsewhere, and once the bridge stops watching, it posts
``launch_all`` with ``call_soon_threadsafe``. Both must start every request
exactly once, however the requests of several threads interleave, and a
closed loop must still be answered 503 rather than hang.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from asgibridge import AsgiToWsgi
from asgibridge._asgi import _launch
from asgibridge._core import BackgroundLoop
from tests.support.scopes import cgi_environ as make_environ

needs_eventfd = pytest.mark.skipif(not hasattr(os, "eventfd"), reason="needs os.eventfd")


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["path"].encode()})


def _get(bridge: AsgiToWsgi, path: str = "/") -> tuple[str, bytes]:
    got: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        got.append(status)
        return lambda data: None

    result = bridge(make_environ(PATH_INFO=path), start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return got[0], body


def _hammer(bridge: AsgiToWsgi, threads: int, each: int) -> list[BaseException]:
    """``threads`` threads send ``each`` requests at once; every answer must be its own."""
    failures: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def worker(k: int) -> None:
        try:
            barrier.wait(10)
            for i in range(each):
                path = f"/t{k}/r{i}"
                status, body = _get(bridge, path)
                assert (status, body) == ("200 OK", path.encode())
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(30)
        assert not t.is_alive(), "a request was never started: its wake-up was lost"
    return failures


@needs_eventfd
def test_a1_loop_watches_an_eventfd_and_every_request_starts_once() -> None:
    """With eventfd wake-ups, concurrent requests from several threads all start, once each."""
    bridge = AsgiToWsgi(_hello, lifespan="off")
    try:
        bridge.start()  # posts watch(): the first request, posted after it, finds it done
        assert _get(bridge) == ("200 OK", b"/")
        assert bridge._launcher.fd >= 0
        assert _hammer(bridge, threads=6, each=40) == []
        assert not bridge._launcher.queue
    finally:
        bridge.close()


def test_a1_without_eventfd_requests_are_posted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the loop cannot be woken by an eventfd, launch_all is posted, and works alike."""
    monkeypatch.setattr(_launch, "_HAS_EVENTFD", False)
    bridge = AsgiToWsgi(_hello, lifespan="off")
    try:
        bridge.start()
        assert bridge._launcher.fd == -1
        assert _hammer(bridge, threads=4, each=20) == []
    finally:
        bridge.close()


def test_a1_loop_that_cannot_watch_descriptors_falls_back_to_posting() -> None:
    """A loop whose add_reader raises NotImplementedError gets its requests posted."""
    loop = BackgroundLoop("test-no-add-reader")

    async def no_readers() -> None:
        def refuse(*args: Any) -> None:
            raise NotImplementedError

        asyncio.get_running_loop().add_reader = refuse  # type: ignore[method-assign]

    loop.call(no_readers)
    bridge = AsgiToWsgi(_hello, lifespan="off", loop=loop)
    try:
        assert _get(bridge, "/a") == ("200 OK", b"/a")
        assert bridge._launcher.fd == -1
    finally:
        bridge.close()
        loop.close()


@needs_eventfd
def test_a1_bridge_closed_on_a_shared_loop_stops_watching() -> None:
    """Closing a bridge on a loop that runs on removes its reader; a new bridge serves."""
    loop = BackgroundLoop("test-shared-unwatch")
    try:
        first = AsgiToWsgi(_hello, lifespan="off", loop=loop)
        assert _get(first, "/one") == ("200 OK", b"/one")
        launcher = first._launcher
        fd = launcher.fd
        assert fd >= 0
        first.close()
        assert launcher.fd == -1
        assert loop.running

        async def watched(fd: int) -> bool:
            selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
            return fd in selector.get_map()

        assert loop.call(watched, fd) is False
        second = AsgiToWsgi(_hello, lifespan="off", loop=loop)
        try:
            assert _get(second, "/two") == ("200 OK", b"/two")
        finally:
            second.close()
    finally:
        loop.close()


@needs_eventfd
def test_a1_request_after_the_shared_loop_closed_is_a_503() -> None:
    """A shared loop closed elsewhere: the next request is answered 503, it never hangs."""
    loop = BackgroundLoop("test-shared-closed")
    bridge = AsgiToWsgi(_hello, lifespan="off", loop=loop)
    try:
        assert _get(bridge, "/") == ("200 OK", b"/")
        assert bridge._launcher.fd >= 0
        loop.close()
        status, _ = _get(bridge, "/")
        assert status == "503 Service Unavailable"
        assert not bridge._launcher.posted and not bridge._launcher.queue
    finally:
        bridge.close()


@needs_eventfd
def test_a1_launcher_closes_its_eventfd_when_freed() -> None:
    """The eventfd lives as long as its launcher: closed when the bridge and loop let go."""
    bridge = AsgiToWsgi(_hello, lifespan="off")
    assert _get(bridge)[0] == "200 OK"
    fd = bridge._launcher.fd
    assert fd >= 0
    os.fstat(fd)  # open
    bridge.close()
    bridge._launcher = _launch.Launcher(None)  # what the bridge still held
    import gc

    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)


class _FakeExchange:
    """What launch_all needs of an Exchange: ``run()``, ``context`` and ``task``."""

    def __init__(self) -> None:
        import contextvars

        self.context = contextvars.copy_context()
        self.task: Any = None

    async def run(self) -> None:
        return None


@needs_eventfd
def test_a1_launch_all_reads_the_eventfd_before_it_clears_posted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A WSGI thread that queues a request while launch_all starts cannot lose its wake-up.

    The invariant: whenever ``posted`` is left set, a write is waiting on the
    eventfd. The hook plays a WSGI thread that runs just before the loop's read.
    """

    async def main() -> tuple[bool, bool, int]:
        import select

        launcher = _launch.Launcher(asyncio.get_running_loop())
        fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        launcher._own_fd = launcher.fd = fd
        real_read = _launch._eventfd_read

        def wsgi_thread_then_read(fd: int) -> int:
            launcher.queue.append(_FakeExchange())  # type: ignore[arg-type]
            if not launcher.posted:
                launcher.posted = True
                os.eventfd_write(fd, 1)
            return real_read(fd)

        monkeypatch.setattr(_launch, "_eventfd_read", wsgi_thread_then_read)
        launcher.queue.append(_FakeExchange())  # type: ignore[arg-type]
        launcher.posted = True
        os.eventfd_write(fd, 1)
        launcher.launch_all()
        pending = bool(select.select([fd], [], [], 0)[0])
        tasks = list(launcher.tasks)
        await asyncio.gather(*tasks)
        return launcher.posted, pending, len(tasks)

    posted, pending, started = asyncio.run(main())
    assert started == 2
    assert pending or not posted


def test_a1_first_request_on_the_shared_loops_own_thread_is_refused_as_before() -> None:
    """Starting the bridge posts its eventfd watch instead of waiting for it, so a first
    request made on the shared loop's own thread still gets the loop-thread error."""
    from asgibridge.errors import SchedulerError

    loop = BackgroundLoop("test-on-loop-thread")
    bridge = AsgiToWsgi(_hello, lifespan="off", loop=loop)

    async def call_from_loop() -> str:
        try:
            _get(bridge)
        except SchedulerError as exc:
            return str(exc)
        return "served"

    try:
        assert "its own event loop thread" in loop.call(call_from_loop)
        assert _get(bridge, "/after") == ("200 OK", b"/after")
    finally:
        bridge.close()
        loop.close()
