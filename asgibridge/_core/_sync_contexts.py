"""``ThreadSensitiveContext`` and ``AsyncSingleThreadContext``, and asgiref's class-state views.

Theory of operation
-------------------
Both context managers only say *where* later calls go; they hold no thread
until a call needs one.

* :class:`ThreadSensitiveContext` (an async context manager) sets
  :data:`CURRENT_TSC` for the tasks inside it. Thread-sensitive calls made
  there, outside any ``async_to_sync`` (no :data:`~._homes.HOME`), go to
  :func:`thread_sensitive_target`: the lane the context borrowed from the
  scheduler's lane pool on first use, given back on exit once its queued
  calls have run. Calls made after the block exited by a task that outlived
  it ("late" calls, U10) share one other lane, given back when the context
  object is freed.
* :class:`AsyncSingleThreadContext` (a sync context manager) sets
  :data:`CURRENT_ASTC`; ``async_to_sync`` from a plain thread inside it runs
  the coroutine on one :class:`~._loops.BackgroundLoop` owned by the context.

Some code (asgiref's own tests, a few APM agents) reads asgiref's internal
class attributes ``SyncToAsync.thread_sensitive_context``,
``SyncToAsync.context_to_thread_executor`` and ``AsyncToSync.executors``.
``asgibridge.sync`` mirrors them with the read-mostly views at the end of
this module, so that such code sees the same answers; nothing in asgibridge
uses them.

The public classes keep ``__module__ = "asgibridge.sync"``: that is where
users import them from.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import SchedulerError
from ._executors import ExecutorTarget, check_executor
from ._homes import HOME
from ._jobs import Job
from ._lanes import Lane
from ._loops import BackgroundLoop
from ._scheduler import default_scheduler

__all__ = [
    "CURRENT_ASTC",
    "CURRENT_TSC",
    "AsyncSingleThreadContext",
    "ContextExecutorsView",
    "ExecutorsView",
    "SupportsSubmit",
    "ThreadSensitiveContext",
    "thread_sensitive_target",
]


class SupportsSubmit(Protocol):
    """What an ``executor`` must offer: ``submit(fn, *args)``, as ``concurrent.futures`` has."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...


SupportsSubmit.__module__ = "asgibridge.sync"


#: The ThreadSensitiveContext in force for this task, if any.
CURRENT_TSC: contextvars.ContextVar[ThreadSensitiveContext | None] = contextvars.ContextVar(
    "asgibridge_thread_sensitive_context", default=None
)


def thread_sensitive_target() -> Any:
    """Where a thread-sensitive call outside ``async_to_sync`` goes (no ``HOME``)."""
    tsc = CURRENT_TSC.get()
    if tsc is None:
        return default_scheduler().default_lane()
    return tsc._target()


class ThreadSensitiveContext:
    """Async context manager: thread-sensitive calls inside it share one thread of their own.

    Django enters one per request so that requests do not queue behind each
    other on the single process-wide thread. Only the outermost context takes
    effect, unless ``executor`` is given: then the block uses that executor
    (which must run one call at a time on one thread) even inside another
    context or an ``async_to_sync`` call, and the caller keeps ownership of it.

    The thread is borrowed from a pool of parked threads when the first
    thread-sensitive call needs it, and returned on exit once the calls
    already queued on it have run.

    A *late* call, made after the block exited by a task that outlived it,
    still runs, as under asgiref: late calls of one context share one thread,
    which goes back to the pool as soon as the context object itself is
    freed (when the last task that can see it is gone), so no thread outlives
    the request that borrowed it (U10). With ``executor``, late calls raise
    :class:`~asgibridge.errors.SchedulerError`: that executor is the
    caller's, and may be shut down by then.
    """

    def __init__(self, *, executor: SupportsSubmit | None = None) -> None:
        if executor is not None:
            check_executor(executor, "ThreadSensitiveContext's executor")
        self._executor = executor
        self._lane: Lane | None = None
        self._foreign: ExecutorTarget | None = None
        self._token: contextvars.Token[ThreadSensitiveContext | None] | None = None
        self._home_token: contextvars.Token[Any] | None = None
        self._exited = False
        self._late: Lane | None = None
        self._last = 0  # the thread ident of the lane this context last gave back
        self._late_return: weakref.finalize[Any, Any] | None = None

    def _target(self) -> Any:
        if self._exited:
            raise SchedulerError(
                "ThreadSensitiveContext has exited. Tasks created inside it must finish "
                "before it exits; await them inside the 'async with' block."
            )
        if self._executor is not None:
            if self._foreign is None:
                self._foreign = ExecutorTarget(self._executor)
            return self._foreign
        if self._token is None:
            return self._late_lane()
        lane = self._lane
        if lane is None:
            lane = self._lane = default_scheduler().lanes.acquire()
        return lane

    def _late_lane(self) -> Lane:
        """The thread for calls made after the block exited (U10), given back when ``self`` dies."""
        lane = self._late
        if lane is None:
            lanes = default_scheduler().lanes
            # asgiref gives late calls a new worker: not the thread the block used.
            lane = self._late = lanes.acquire(avoid=self._last)
            self._late_return = weakref.finalize(self, lanes.release, lane)
        return lane

    def _detach_lane(self) -> Lane | None:
        """Hand this context's current or late thread to the caller (asgiref compatibility)."""
        if self._token is not None and self._lane is not None:
            lane: Lane | None = self._lane
            self._lane = None
            return lane
        lane, self._late = self._late, None
        if self._late_return is not None:
            self._late_return.detach()
            self._late_return = None
        return lane

    async def __aenter__(self) -> ThreadSensitiveContext:
        if self._executor is not None:
            if self._token is not None:
                raise RuntimeError("ThreadSensitiveContext is already entered")
            if self._exited:
                raise RuntimeError(
                    "ThreadSensitiveContext with an executor cannot be entered again"
                )
            self._token = CURRENT_TSC.set(self)
            # Calls in this block go to the executor, not to an enclosing sync thread.
            self._home_token = HOME.set(None)
        elif CURRENT_TSC.get() is None:
            self._token = CURRENT_TSC.set(self)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        token = self._token
        if token is None:
            return
        self._token = None
        if self._home_token is not None:
            HOME.reset(self._home_token)
            self._home_token = None
        CURRENT_TSC.reset(token)
        self._exited = True
        lane, self._lane = self._lane, None
        if lane is not None:
            self._last = lane.ident
            default_scheduler().lanes.release(lane)
        if self._executor is None:
            # A context without an executor may be entered again, with a new thread.
            self._exited = False


ThreadSensitiveContext.__module__ = "asgibridge.sync"


#: The AsyncSingleThreadContext in force, if any.
CURRENT_ASTC: contextvars.ContextVar[AsyncSingleThreadContext | None] = contextvars.ContextVar(
    "asgibridge_async_single_thread_context", default=None
)


class AsyncSingleThreadContext:
    """Context manager: every ``async_to_sync`` call inside it runs on one other thread.

    As in asgiref: outside it, ``async_to_sync`` from a plain thread runs the
    coroutine on a loop of that thread's own; inside it, every such call runs
    on one thread and loop owned by the context (an
    :class:`~asgibridge.BackgroundLoop`, started on first use and stopped on
    exit), while thread-sensitive calls the coroutines make still come back
    to the calling thread. Calls made inside ``sync_to_async`` keep going to
    the loop that started it. Only the outermost context takes effect.
    Context variables set by one call are seen by the next.
    """

    def __init__(self) -> None:
        self.token: contextvars.Token[AsyncSingleThreadContext | None] | None = None
        self._loop: BackgroundLoop | None = None

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        loop = self._loop
        if loop is None:
            loop = self._loop = BackgroundLoop(name="asgibridge-single-thread")
        return loop.call(fn, *args, **kwargs)

    def __enter__(self) -> AsyncSingleThreadContext:
        if CURRENT_ASTC.get() is None:
            self.token = CURRENT_ASTC.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        token, self.token = self.token, None
        if token is None:
            return
        CURRENT_ASTC.reset(token)
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()


AsyncSingleThreadContext.__module__ = "asgibridge.sync"


# ------------------------------------------------- asgiref's class-level state, as views


class ExecutorsView:
    """``AsyncToSync.executors``: ``.current`` names the sync thread of the enclosing
    ``async_to_sync`` (where thread-sensitive calls go), or None."""

    @property
    def current(self) -> object:
        return HOME.get()


class ContextExecutorsView:
    """``SyncToAsync.context_to_thread_executor``: ThreadSensitiveContext -> its thread."""

    def __contains__(self, context: object) -> bool:
        if not isinstance(context, ThreadSensitiveContext):
            return False
        has_lane = context._token is not None and context._lane is not None
        return has_lane or context._late is not None

    def get(self, context: object, default: Any = None) -> Any:
        return _LaneExecutor(context._lane or context._late) if context in self else default  # type: ignore[attr-defined]

    def __getitem__(self, context: object) -> Any:
        if context not in self:
            raise KeyError(context)
        return self.get(context)

    def pop(self, context: object, *default: Any) -> Any:
        """Take the context's thread: the returned executor gives it back on shutdown."""
        lane = context._detach_lane() if context in self else None  # type: ignore[attr-defined]
        if lane is None:
            if default:
                return default[0]
            raise KeyError(context)
        return _LaneExecutor(lane, owned=True)


class _LaneExecutor(concurrent.futures.Executor):
    """A lane thread seen as a one-thread ``concurrent.futures.Executor``."""

    def __init__(self, lane: Lane | None, owned: bool = False) -> None:
        self._lane = lane
        self._owned = owned

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        lane = self._lane
        if lane is None:
            raise RuntimeError("cannot schedule new futures after shutdown")
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        job = Job(fn, args, kwargs, contextvars.Context())
        job.waiter = _FutureSetter(fut)
        lane.submit(job)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        lane, self._lane = self._lane, None
        if lane is not None and self._owned:
            default_scheduler().lanes.release(lane)


class _FutureSetter:
    __slots__ = ("fut",)

    def __init__(self, fut: concurrent.futures.Future[Any]) -> None:
        self.fut = fut

    def put(self, outcome: tuple[bool, Any]) -> None:
        ok, value = outcome
        if ok:
            self.fut.set_result(value)
        else:
            self.fut.set_exception(value)
