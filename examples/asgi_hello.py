"""A raw ASGI "hello" application, and WSGI wrappers of it for benchmarks.

Serve any of them with a WSGI server, for example::

    gunicorn -k gthread --threads 8 examples.asgi_hello:asgibridge_app
    gunicorn -k gthread --threads 8 examples.asgi_hello:a2wsgi_app
    gunicorn -k gthread --threads 8 examples.asgi_hello:wsgi_hello

``wsgi_hello`` is the same response from a plain WSGI function: the ceiling
a bridge is measured against. ``handoff_floor`` is ``wsgi_hello`` plus one
round trip to a background event loop that creates one task: the cost no
bridge that keeps lifespan and requests on one loop can avoid.
``handoff_floor_batched`` is the same round trip with loop wake-ups shared
between requests that arrive together (as asgibridge does): the lower floor.
``handoff_floor_eventfd`` is the batched floor woken through an eventfd that
the loop watches (``add_reader``) instead of ``call_soon_threadsafe``, as
asgibridge does since issue 14's third pass: the lowest floor known.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from asgibridge._core import BackgroundLoop
from asgibridge.asgi import AsgiToWsgi

Message = MutableMapping[str, Any]

BODY = b"Hello, world!"
_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())]


async def hello(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """ASGI 3 hello world, with a minimal lifespan handler."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def wsgi_hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The same response from a plain WSGI application."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]


#: ``hello`` through asgibridge.
asgibridge_app = AsgiToWsgi(hello)


# ------------------------------------------------------------------ hand-off floor
# What any bridge pays that runs requests on one shared event loop thread (rule A1):
# post one callback to the loop, create one task there, and wake the WSGI thread
# back. No ASGI at all. benchmarks/asgi_e2e.py measures it next to the bridges.

_floor_loop = BackgroundLoop("handoff-floor")
_floor_fds = threading.local()


async def _floor_task(fd: int) -> None:
    os.eventfd_write(fd, 1)


def _floor_start(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    loop.create_task(_floor_task(fd))


def handoff_floor(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """``wsgi_hello`` plus the bare loop round trip (Linux: needs ``os.eventfd``)."""
    fd = getattr(_floor_fds, "fd", None)
    if fd is None:
        fd = _floor_fds.fd = os.eventfd(0, os.EFD_CLOEXEC)
    ref = _floor_loop.ref()
    ref.post(_floor_start, ref.loop, fd)
    os.eventfd_read(fd)
    return wsgi_hello(environ, start_response)


_batch_loop = BackgroundLoop("handoff-floor-batched")
_batch: deque[int] = deque()
_batch_posted = [False]


def _batch_drain(loop: asyncio.AbstractEventLoop) -> None:
    _batch_posted[0] = False  # before draining: a later append posts again
    while _batch:
        loop.create_task(_floor_task(_batch.popleft()))


def handoff_floor_batched(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """``handoff_floor``, but one loop wake-up serves every request queued since the last one."""
    fd = getattr(_floor_fds, "fd", None)
    if fd is None:
        fd = _floor_fds.fd = os.eventfd(0, os.EFD_CLOEXEC)
    ref = _batch_loop.ref()
    _batch.append(fd)
    if not _batch_posted[0]:
        _batch_posted[0] = True
        ref.post(_batch_drain, ref.loop)
    os.eventfd_read(fd)
    return wsgi_hello(environ, start_response)


_efd_loop = BackgroundLoop("handoff-floor-eventfd")
_efd_batch: deque[int] = deque()
_efd_posted = [False]
_efd_wake: list[int] = []  # the eventfd the loop watches, once it does
_efd_lock = threading.Lock()


def _efd_drain(loop: asyncio.AbstractEventLoop, wake: int) -> None:
    try:
        os.eventfd_read(wake)  # before the flag is lowered: a later append wakes us again
    except BlockingIOError:
        pass
    _efd_posted[0] = False
    while _efd_batch:
        loop.create_task(_floor_task(_efd_batch.popleft()))


async def _efd_watch() -> int:
    loop = asyncio.get_running_loop()
    wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    loop.add_reader(wake, _efd_drain, loop, wake)
    return wake


def handoff_floor_eventfd(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """``handoff_floor_batched``, with the loop woken by an eventfd it watches."""
    fd = getattr(_floor_fds, "fd", None)
    if fd is None:
        fd = _floor_fds.fd = os.eventfd(0, os.EFD_CLOEXEC)
    if not _efd_wake:
        with _efd_lock:
            if not _efd_wake:
                _efd_wake.append(_efd_loop.call(_efd_watch))
    _efd_batch.append(fd)
    if not _efd_posted[0]:
        _efd_posted[0] = True
        os.eventfd_write(_efd_wake[0], 1)
    os.eventfd_read(fd)
    return wsgi_hello(environ, start_response)


def __getattr__(name: str) -> Any:
    """``a2wsgi_app``: ``hello`` through a2wsgi's ASGIMiddleware (the peer), made on first use.

    a2wsgi starts its event loop thread when the middleware is created, so it
    is not created at import time.
    """
    if name != "a2wsgi_app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from a2wsgi import ASGIMiddleware

    app = ASGIMiddleware(hello)  # type: ignore[arg-type]
    globals()["a2wsgi_app"] = app
    return app
