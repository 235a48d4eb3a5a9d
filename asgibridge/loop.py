"""One shared event loop for legacy sync code: :func:`shared_loop` and :func:`run_shared`.

Theory of operation
-------------------
``async_to_sync`` runs each call on a loop cached for the *calling thread*.
That is the fastest way for a thread to await a coroutine, but an object
bound to a loop (an ``httpx.AsyncClient``, an ``asyncpg`` pool, an
``aiohttp`` session) made on one thread's loop fails on every other thread
("... is bound to a different event loop"). asgiref behaves the same way.

Legacy threaded code that wants *one* such object for the whole process
needs one loop for the whole process. :func:`shared_loop` is that loop: a
:class:`~asgibridge.BackgroundLoop` on a daemon thread, started on first
use, fork-safe (a forked child starts its own on first use). Objects made
on it may be used from any thread through :func:`run_shared`, which posts
the coroutine to the loop and blocks the calling thread until it is done:
one hand-off each way, like ``asyncio.run_coroutine_threadsafe(...)
.result()``, but without a ``concurrent.futures.Future`` per call.

Nothing here starts at import.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, overload

from ._core import BackgroundLoop

__all__ = ["run_shared", "shared_loop"]

T = TypeVar("T")

_lock = threading.Lock()
_shared: BackgroundLoop | None = None


def shared_loop() -> BackgroundLoop:
    """The process-wide shared :class:`~asgibridge.BackgroundLoop` (made on first call).

    Create loop-bound objects on it (``run_shared(make_client)``) and use
    them from any thread with :func:`run_shared`. Its thread is a daemon;
    call ``shared_loop().close()`` at exit if pending work must be
    cancelled cleanly, after which a later call makes a new one.
    """
    global _shared
    loop = _shared
    if loop is None or loop.closed:
        with _lock:
            loop = _shared
            if loop is None or loop.closed:
                loop = _shared = BackgroundLoop("asgibridge-shared")
    return loop


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


@overload
def run_shared(fn: Coroutine[Any, Any, T], /) -> T: ...
@overload
def run_shared(fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T: ...
def run_shared(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Run ``await fn(*args, **kwargs)`` on the :func:`shared_loop` and return its result.

    Call it from any thread that is not running an event loop: a WSGI
    worker, a ``threading.Thread``, a Celery task. ``fn`` may also be an
    awaitable (``run_shared(client.get(url))``). The calling thread blocks
    until the coroutine finishes; its exception is raised here with its
    traceback, and context variables it changed are copied back (U3).

    Use :func:`~asgibridge.async_to_sync` instead when nothing loop-bound is
    shared between threads: it needs no hand-off at all.

    :raises SchedulerError: called on the shared loop's own thread (await
        the coroutine there instead).
    """
    if not callable(fn):
        if args or kwargs:
            raise TypeError("run_shared(awaitable) takes no further arguments")
        return shared_loop().call(_await, fn)
    return shared_loop().call(fn, *args, **kwargs)
