"""The trio backend, imported only once trio itself has been imported.

* posting from a thread: ``TrioToken.run_sync_soon``;
* starting a task from a thread: a system task (it cannot be cancelled from
  outside, so the portal gives the awaiting side a ``CancelScope`` instead);
* waiting for a job: ``trio.lowlevel`` parking, rescheduled by :func:`_settle`;
  cancelling the waiter aborts the job and cancels its nested
  ``async_to_sync`` coroutine, but does not wait for it;
* per-loop state: one ``trio.lowlevel.RunVar`` per key;
* hiding the run from sync code in a greenlet (U7): :class:`TrioHidden`.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import outcome
import trio

from ._base import Background, LoopRef, Signal

if TYPE_CHECKING:
    from .._jobs import Job

__all__ = ["TrioBackground", "TrioHidden", "TrioRef", "TrioSignal", "trio_ref"]

logger = logging.getLogger("asgibridge.wsgi")

#: key -> the RunVar that holds each trio run's value for it.
_run_vars: dict[str, trio.lowlevel.RunVar[Any]] = {}


class TrioRef(LoopRef):
    """A :class:`~._base.LoopRef` on a trio run; ``loop`` is its ``TrioToken``."""

    __slots__ = ()

    backend = "trio"
    cancelled_error = trio.Cancelled

    def start(
        self,
        coro_fn: Callable[..., Coroutine[Any, Any, Any]],
        args: tuple[Any, ...],
        context: contextvars.Context,
    ) -> None:
        """From any thread: run ``coro_fn(*args)`` as a system task, in ``context``."""
        self.post(_start_task, coro_fn, args, context)

    def is_closed(self) -> bool:
        """Always False: a finished trio run refuses ``post`` with ``RuntimeError`` instead."""
        return False

    def local(self, key: str, factory: Callable[[LoopRef], Any]) -> Any:
        """This run's value for ``key``, kept in a ``RunVar``."""
        var = _run_vars.get(key)
        if var is None:
            var = _run_vars[key] = trio.lowlevel.RunVar(key)
        try:
            return var.get()
        except LookupError:
            value = factory(self)
            var.set(value)
            return value

    async def run_job(self, job: Job, target: Any) -> Any:
        """Send ``job`` to ``target`` and await its outcome (see :meth:`LoopRef.run_job`)."""
        job.ref = self
        job.waiter = trio.lowlevel.current_task()
        job.settle = _settle
        target.submit(job)

        def abort(_raise_cancel: Any) -> Any:
            job.aborted = True
            cancel = job.cancel_nested
            if cancel is not None:
                cancel()
            return trio.lowlevel.Abort.SUCCEEDED

        ok, value = await trio.lowlevel.wait_task_rescheduled(abort)
        if ok:
            return value
        # As on asyncio: the traceback must not keep the error or the job alive.
        job.waiter = None
        job = None  # type: ignore[assignment]
        try:
            raise value
        finally:
            del value

    async def outcome_nested(
        self, job: Job, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[bool, Any]:
        """``await fn(...)`` inside a cancel scope that ``job`` may cancel (U5)."""
        # A trio system task cannot be cancelled from outside, so give the
        # awaiting side a scope to cancel (U5: cancellation reaches the sync code).
        with trio.CancelScope() as scope:
            job.cancel_nested = scope.cancel
            try:
                ok, value = True, await fn(*args, **kwargs)
            except BaseException as exc:
                ok, value = False, exc
        return ok, value

    def signal(self) -> Signal:
        """A new :class:`TrioSignal`."""
        return TrioSignal()

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> Background:
        """Start ``fn()`` as a system task in its own cancel scope."""
        return TrioBackground(fn)

    async def checkpoint(self) -> None:
        """Let every other ready task run once (``trio.lowlevel.checkpoint``)."""
        await trio.lowlevel.checkpoint()


def trio_ref() -> TrioRef | None:
    """The :class:`TrioRef` of the trio run in this thread, or None outside one."""
    try:
        token = trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None
    return TrioRef(token, token.run_sync_soon)


def _start_task(
    coro_fn: Callable[..., Coroutine[Any, Any, Any]],
    args: tuple[Any, ...],
    context: contextvars.Context,
) -> None:
    # A system task: the coroutine wrapper never raises, it reports its outcome.
    trio.lowlevel.spawn_system_task(coro_fn, *args, context=context)


def _settle(job: Job, ok: bool, value: Any) -> None:
    if job.aborted:
        return
    trio.lowlevel.reschedule(job.waiter, outcome.Value((ok, value)))


class TrioSignal(Signal):
    """The one-waiter wake-up flag on trio, with ``trio.lowlevel`` parking."""

    __slots__ = ("_flag", "_task")

    def __init__(self) -> None:
        self._task: Any = None
        self._flag = False

    def set(self) -> None:
        """Wake the waiter, or remember the wake-up for the next :meth:`wait`."""
        task = self._task
        if task is None:
            self._flag = True
        else:
            self._task = None
            trio.lowlevel.reschedule(task)

    async def wait(self) -> None:
        """Return once :meth:`set` has been called (at once if it already was)."""
        if self._flag:
            self._flag = False
            return
        lowlevel = trio.lowlevel
        self._task = lowlevel.current_task()

        def abort(_raise_cancel: Any) -> Any:
            self._task = None
            return lowlevel.Abort.SUCCEEDED

        await lowlevel.wait_task_rescheduled(abort)


class TrioBackground(Background):
    """A trio system task inside its own cancel scope."""

    __slots__ = ("_done", "_scope")

    def __init__(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
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


class TrioHidden:
    """``greenlet.switch`` with trio's run context hidden while the greenlet runs (U7).

    trio keeps "which run is this thread in" in a thread-local run context;
    ``trio.lowlevel.current_trio_token()`` and ``current_task()`` (and so
    sniffio and anyio) read it. Outside a trio run this is a plain switch.
    """

    __slots__ = ("run_context", "switch")

    def __init__(self, switch: Callable[..., Any]) -> None:
        self.switch = switch
        self.run_context = _run_context()

    def __call__(self, arg: Any) -> Any:
        rc = self.run_context
        if rc is None:
            return self.switch(arg)
        saved = {name: rc.__dict__.pop(name) for name in ("runner", "task") if name in rc.__dict__}
        sniff = sys.modules.get("sniffio")
        sniff_name = None
        if sniff is not None:
            sniff_name = sniff.thread_local.name
            sniff.thread_local.name = None
        try:
            return self.switch(arg)
        finally:
            rc.__dict__.update(saved)
            if sniff is not None:
                sniff.thread_local.name = sniff_name


def _run_context() -> Any:
    """trio's thread-local run context when this thread is inside ``trio.run``, else None."""
    try:
        from trio._core._run import GLOBAL_RUN_CONTEXT
    except ImportError:  # pragma: no cover - a trio without this internal
        return None
    return GLOBAL_RUN_CONTEXT if hasattr(GLOBAL_RUN_CONTEXT, "runner") else None
