"""The asyncio backend (the stdlib loop, uvloop, any ``asyncio.AbstractEventLoop``).

* posting from a thread: ``loop.call_soon_threadsafe``;
* waiting for a job: a future of the loop, set by :func:`_settle` on the loop
  thread; cancellation is passed on to the job's nested ``async_to_sync``
  task and waited for, as asgiref does (U10);
* per-loop state: attributes named ``_asgibridge_*`` on the loop object
  (a ``getattr``, as cheap as it gets), dropped by :func:`close_loop`.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ._base import Background, LoopRef, Signal

if TYPE_CHECKING:
    from .._jobs import Job

__all__ = ["ROOT", "AsyncioBackground", "AsyncioRef", "AsyncioSignal", "asyncio_ref", "close_loop"]

#: The loop attribute that holds the loop's own :class:`AsyncioRef`.
ROOT = "_asgibridge_ref"


class AsyncioRef(LoopRef):
    """A :class:`~._base.LoopRef` on an asyncio loop."""

    __slots__ = ()

    backend = "asyncio"
    cancelled_error = asyncio.CancelledError

    def start(
        self,
        coro_fn: Callable[..., Coroutine[Any, Any, Any]],
        args: tuple[Any, ...],
        context: contextvars.Context,
    ) -> None:
        """From any thread: run ``coro_fn(*args)`` as a new task on this loop, in ``context``."""
        self.post(_start_task, self.loop, coro_fn, args, context)

    def is_closed(self) -> bool:
        """True when the loop is closed."""
        return bool(self.loop.is_closed())

    def local(self, key: str, factory: Callable[[LoopRef], Any]) -> Any:
        """This loop's value for ``key`` (an ``_asgibridge_*`` attribute of the loop)."""
        loop = self.loop
        value = getattr(loop, key, None)
        if value is None:
            value = factory(self)
            try:
                setattr(loop, key, value)
            except AttributeError:  # pragma: no cover - exotic loop with __slots__
                pass
        return value

    async def run_job(self, job: Job, target: Any) -> Any:
        """Send ``job`` to ``target`` and await its outcome (see :meth:`LoopRef.run_job`)."""
        job.ref = self
        fut = self.loop.create_future()
        job.waiter = fut
        job.settle = _settle
        target.submit(job)
        try:
            ok, value = await fut
        except asyncio.CancelledError:
            absorbed = await _pass_cancel_on(job, fut)
            if absorbed is None:
                raise
            ok, value = absorbed
        if ok:
            return value
        # The traceback will hold this frame: keep neither the error (directly or
        # through the future's result) nor the job in it, or the error, the frame
        # and the call's arguments form a cycle that only a GC pass frees.
        job.waiter = None
        fut = job = None  # type: ignore[assignment]
        try:
            raise value
        finally:
            del value

    async def outcome_nested(
        self, job: Job, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[bool, Any]:
        """``await fn(...)`` in the current task, which ``job`` may cancel (U5, U10)."""
        task = asyncio.current_task()
        job.cancel_nested = task.cancel if task is not None else None
        job.nested = task
        try:
            return True, await fn(*args, **kwargs)
        except BaseException as exc:
            return False, exc

    def signal(self) -> Signal:
        """A new :class:`AsyncioSignal` for this loop."""
        return AsyncioSignal(self.loop)

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> Background:
        """Start ``fn()`` as an asyncio task."""
        return AsyncioBackground(self.loop.create_task(fn()))

    async def checkpoint(self) -> None:
        """Let every other ready task run once (``asyncio.sleep(0)``)."""
        await asyncio.sleep(0)


def _start_task(
    loop: asyncio.AbstractEventLoop,
    coro_fn: Callable[..., Coroutine[Any, Any, Any]],
    args: tuple[Any, ...],
    context: contextvars.Context,
) -> None:
    if sys.version_info >= (3, 11):
        loop.create_task(coro_fn(*args), context=context)
    else:  # pragma: no cover - 3.10 copies the context it is created in
        context.run(loop.create_task, coro_fn(*args))


def _settle(job: Job, ok: bool, value: Any) -> None:
    fut = job.waiter
    if not fut.done():
        fut.set_result((ok, value))


async def _pass_cancel_on(job: Job, fut: asyncio.Future[Any]) -> tuple[bool, Any] | None:
    """The task awaiting ``job`` was cancelled: the job's outcome if it absorbed that (U10).

    As asgiref does: if the sync code is blocked in ``async_to_sync``, the
    cancellation is passed to the coroutine it awaits, and that coroutine is
    waited for. If it absorbs the cancellation (returns normally), the sync
    code carries on and its outcome is awaited and returned. Otherwise (None)
    the cancellation propagates at once; the sync code finishes in its thread
    and its result is dropped. A job that has not started will not run at all.
    """
    nested = job.nested
    if nested is None or nested.done() or (fut.done() and not fut.cancelled()):
        job.aborted = True  # not started yet: it will not run at all
        if nested is not None:
            nested.cancel()
        return None
    # Cancelling the task cancelled ``fut`` too: the outcome goes to a new one.
    job.waiter = outcome = nested.get_loop().create_future()
    nested.cancel()
    try:
        ended_cancelled = await asyncio.shield(nested)
        if ended_cancelled:
            job.aborted = True
            return None
        return await outcome  # type: ignore[no-any-return]
    except asyncio.CancelledError:
        job.aborted = True
        raise


class AsyncioSignal(Signal):
    """The one-waiter wake-up flag on asyncio: a future per wait, none when already set."""

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


class AsyncioBackground(Background):
    """A helper task that lives no longer than its request: an asyncio task."""

    __slots__ = ("_task",)

    def __init__(self, task: asyncio.Task[None]) -> None:
        self._task = task

    def cancel(self) -> None:
        """Cancel the task (it finishes at its next await)."""
        self._task.cancel()

    async def join(self) -> None:
        """Wait until the task has finished, however it ends."""
        await asyncio.wait((self._task,))


def asyncio_ref(loop: asyncio.AbstractEventLoop) -> AsyncioRef:
    """The :class:`AsyncioRef` of ``loop``, made once and kept on the loop (:data:`ROOT`)."""
    ref: AsyncioRef | None = getattr(loop, ROOT, None)
    if ref is None:
        ref = AsyncioRef(loop, loop.call_soon_threadsafe)
        try:
            setattr(loop, ROOT, ref)
        except AttributeError:  # pragma: no cover - exotic loop with __slots__
            pass
    return ref


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Close an asyncio loop that asgibridge owns, and drop what it kept on it.

    The per-loop values (``_asgibridge_*`` attributes, see :meth:`AsyncioRef.local`)
    point back at the loop; removing them leaves no reference cycle, so the
    closed loop is freed at once instead of by a later GC pass.
    """
    try:
        loop.close()
    finally:
        cached = getattr(loop, "__dict__", None)
        if cached is not None:
            for name in [n for n in cached if n.startswith("_asgibridge_")]:
                del cached[name]
