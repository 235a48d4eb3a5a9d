"""The two event loops we speak to: asyncio directly, trio through its token.

Theory of operation
-------------------
Everything that crosses from a worker thread back to an event loop goes
through a :class:`LoopRef`: one ``post(callback, *args)`` that is safe to call
from any thread. For asyncio it is ``loop.call_soon_threadsafe``; for trio it
is ``TrioToken.run_sync_soon``. Nothing else in the core needs to know which
loop is running, except the two places that *wait* on the loop side
(:func:`wait_job`) and start a task from a thread (:meth:`LoopRef.start`).

asyncio is detected with ``asyncio._get_running_loop()`` (a C call, no
exception). trio is only imported when asyncio is not running, so asyncio
users never import it.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from ..errors import SchedulerError

__all__ = ["LoopRef", "close_loop", "current_loop_ref"]

_get_running_loop = asyncio._get_running_loop


class LoopRef:
    """A thread-safe handle on one running event loop."""

    __slots__ = ("backend", "loop", "post")

    def __init__(self, backend: str, loop: Any, post: Callable[..., Any]) -> None:
        self.backend = backend
        self.loop = loop
        self.post = post

    def start(
        self,
        coro_fn: Callable[..., Coroutine[Any, Any, Any]],
        args: tuple[Any, ...],
        context: contextvars.Context,
    ) -> None:
        """From any thread: run ``coro_fn(*args)`` as a new task on this loop, in ``context``."""
        if self.backend == "asyncio":
            self.post(_start_asyncio_task, self.loop, coro_fn, args, context)
        else:
            import trio

            self.post(_start_trio_task, trio, coro_fn, args, context)

    def is_closed(self) -> bool:
        if self.backend == "asyncio":
            return bool(self.loop.is_closed())
        return False


def _start_asyncio_task(
    loop: asyncio.AbstractEventLoop,
    coro_fn: Callable[..., Coroutine[Any, Any, Any]],
    args: tuple[Any, ...],
    context: contextvars.Context,
) -> None:
    if sys.version_info >= (3, 11):
        loop.create_task(coro_fn(*args), context=context)
    else:  # pragma: no cover - 3.10 copies the context it is created in
        context.run(loop.create_task, coro_fn(*args))


def _start_trio_task(
    trio: Any,
    coro_fn: Callable[..., Coroutine[Any, Any, Any]],
    args: tuple[Any, ...],
    context: contextvars.Context,
) -> None:
    # A system task: the coroutine wrapper never raises, it reports its outcome.
    trio.lowlevel.spawn_system_task(coro_fn, *args, context=context)


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Close an asyncio loop that asgibridge owns, and drop what it cached on it.

    The cached :class:`LoopRef` objects (``_asgibridge_*`` attributes) point
    back at the loop; removing them leaves no reference cycle, so the closed
    loop is freed at once instead of by a later GC pass.
    """
    try:
        loop.close()
    finally:
        cached = getattr(loop, "__dict__", None)
        if cached is not None:
            for name in [n for n in cached if n.startswith("_asgibridge_")]:
                del cached[name]


def current_loop_ref() -> LoopRef:
    """The :class:`LoopRef` of the loop running in this thread.

    Raises :class:`~asgibridge.errors.SchedulerError` when no supported loop
    is running.
    """
    loop = _get_running_loop()
    if loop is not None:
        ref = getattr(loop, "_asgibridge_ref", None)
        if ref is None:
            ref = LoopRef("asyncio", loop, loop.call_soon_threadsafe)
            try:
                loop._asgibridge_ref = ref  # type: ignore[attr-defined]
            except AttributeError:  # pragma: no cover - exotic loop with __slots__
                pass
        return ref
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
        else:
            return LoopRef("trio", token, token.run_sync_soon)
    raise SchedulerError(
        "no running event loop: this must be awaited inside asyncio or trio "
        "(for example under asyncio.run(), trio.run() or an ASGI server)"
    )
