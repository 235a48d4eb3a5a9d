"""Loop-side primitives both request paths use, in one asyncio and one trio flavour.

* :class:`Signal` / :func:`make_signal`: a one-waiter wake-up flag for the loop thread;
* :class:`Background` / :func:`spawn`: a helper task that lives no longer than its request;
* :func:`checkpoint`: let every other ready task run once;
* :func:`batching_ref`: a :class:`LoopRef` whose ``post`` coalesces thread -> loop wake-ups
  (one per batch, not one per message), kept once per loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from ._backends import LoopRef

__all__ = ["Background", "Signal", "batching_ref", "checkpoint", "make_signal", "spawn"]

logger = logging.getLogger("asgibridge.wsgi")


class Signal:
    """A one-waiter wake-up flag for the loop thread (asyncio flavour).

    ``set()`` must be called on the loop thread (workers reach it through
    ``LoopRef.post``). A ``set()`` with nobody waiting is remembered.
    """

    __slots__ = ("_flag", "_fut", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._fut: asyncio.Future[Any] | None = None
        self._flag = False

    def set(self) -> None:
        """Wake the waiter, or remember the wake-up for the next :meth:`wait`."""
        fut = self._fut
        if fut is None:
            self._flag = True
        else:
            self._fut = None
            if not fut.done():
                fut.set_result(None)

    async def wait(self) -> None:
        """Return once :meth:`set` has been called (at once if it already was)."""
        if self._flag:
            self._flag = False
            return
        fut = self._fut = self._loop.create_future()
        try:
            await fut
        finally:
            self._fut = None


class _TrioSignal(Signal):
    """The same flag on trio, with ``trio.lowlevel`` parking."""

    __slots__ = ("_task", "_trio")

    def __init__(self, trio: Any) -> None:
        self._trio = trio
        self._task: Any = None
        self._flag = False

    def set(self) -> None:
        """Wake the waiter, or remember the wake-up for the next :meth:`wait`."""
        task = self._task
        if task is None:
            self._flag = True
        else:
            self._task = None
            self._trio.lowlevel.reschedule(task)

    async def wait(self) -> None:
        """Return once :meth:`set` has been called (at once if it already was)."""
        if self._flag:
            self._flag = False
            return
        lowlevel = self._trio.lowlevel
        self._task = lowlevel.current_task()

        def abort(_raise_cancel: Any) -> Any:
            self._task = None
            return lowlevel.Abort.SUCCEEDED

        await lowlevel.wait_task_rescheduled(abort)


def make_signal(ref: LoopRef) -> Signal:
    """A :class:`Signal` for the loop behind ``ref``."""
    if ref.backend == "asyncio":
        return Signal(ref.loop)
    import trio

    return _TrioSignal(trio)


class Background:
    """A helper task that lives no longer than its request (asyncio flavour)."""

    __slots__ = ("_task",)

    def __init__(self, ref: LoopRef, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._task = ref.loop.create_task(fn())

    def cancel(self) -> None:
        """Cancel the task (it finishes at its next await)."""
        self._task.cancel()

    async def join(self) -> None:
        """Wait until the task has finished, however it ends."""
        await asyncio.wait((self._task,))


class _TrioBackground(Background):
    """A trio system task inside its own cancel scope."""

    __slots__ = ("_done", "_scope")

    def __init__(self, ref: LoopRef, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        import trio

        self._scope = trio.CancelScope()
        self._done = trio.Event()
        trio.lowlevel.spawn_system_task(self._main, fn, context=contextvars.copy_context())

    async def _main(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            with self._scope:
                await fn()
        except Exception:  # pragma: no cover - fn catches its own errors
            logger.exception("asgibridge: a WsgiToAsgi helper task failed")
        finally:
            self._done.set()

    def cancel(self) -> None:
        """Cancel the task (it finishes at its next checkpoint)."""
        self._scope.cancel()

    async def join(self) -> None:
        """Wait until the task has finished, however it ends."""
        await self._done.wait()


def spawn(ref: LoopRef, fn: Callable[[], Coroutine[Any, Any, None]]) -> Background:
    """Start ``fn()`` as a helper task on the current loop; cancel it with ``.cancel()``."""
    if ref.backend == "asyncio":
        return Background(ref, fn)
    return _TrioBackground(ref, fn)


async def checkpoint(ref: LoopRef) -> None:
    """Let every other ready task run once."""
    if ref.backend == "asyncio":
        await asyncio.sleep(0)
    else:
        import trio

        await trio.lowlevel.checkpoint()


class _Mailbox:
    """Coalesces thread -> loop posts: one loop wake-up per batch, not per message.

    Every ``post`` from a worker is a syscall (the loop's self-pipe) that
    also releases the GIL, inviting a GIL ping-pong with the loop thread.
    Here a post only appends to a deque; the first post into an empty
    mailbox schedules one ``drain`` on the loop, which runs every callback
    queued by then, in order.
    """

    __slots__ = ("_items", "_lock", "_post", "_scheduled")

    def __init__(self, post: Callable[..., Any]) -> None:
        self._post = post
        self._items: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def post(self, callback: Callable[..., Any], *args: Any) -> None:
        """From any thread: run ``callback(*args)`` on the loop, batched with other posts."""
        with self._lock:
            self._items.append((callback, args))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._post(self._drain)
        except BaseException:
            with self._lock:
                self._scheduled = False
            raise

    def _drain(self) -> None:
        with self._lock:
            self._scheduled = False
            items = self._items
            self._items = deque()
        for callback, args in items:
            try:
                callback(*args)
            except Exception:  # pragma: no cover - our callbacks do not raise
                logger.exception("asgibridge: a WsgiToAsgi loop callback failed")


_trio_refs: Any = None


def batching_ref(ref: LoopRef) -> LoopRef:
    """A :class:`LoopRef` for the same loop whose ``post`` goes through a :class:`_Mailbox`.

    One per loop: cached on the asyncio loop object, or in a trio ``RunVar``.
    Jobs carry it, so ``async_to_sync`` inside the WSGI app uses it too.
    """
    if ref.backend == "asyncio":
        loop = ref.loop
        batched: LoopRef | None = getattr(loop, "_asgibridge_wsgi_ref", None)
        if batched is None:
            batched = LoopRef("asyncio", loop, _Mailbox(ref.post).post)
            try:
                loop._asgibridge_wsgi_ref = batched
            except AttributeError:  # pragma: no cover - exotic loop with __slots__
                pass
        return batched
    global _trio_refs
    import trio

    if _trio_refs is None:
        _trio_refs = trio.lowlevel.RunVar("asgibridge_wsgi_ref")
    try:
        return _trio_refs.get()  # type: ignore[no-any-return]
    except LookupError:
        batched = LoopRef("trio", ref.loop, _Mailbox(ref.post).post)
        _trio_refs.set(batched)
        return batched
