"""asgiref-compatible ``sync_to_async`` / ``async_to_sync``, on the asgibridge scheduler core.

Replacing ``from asgiref.sync import ...`` with ``from asgibridge.sync import ...``
changes nothing but speed: same names, same signatures, same rules (U1-U5):

* thread-sensitive calls run on the outermost sync thread when there is one,
  otherwise on one thread per :class:`ThreadSensitiveContext`, otherwise on
  one process-wide thread;
* context variables flow into the call and back out of it;
* ``async_to_sync`` refuses to run on a thread with a running event loop, and
  nested sync -> async -> sync -> async calls reuse the outer loop.

Where it is faster, and why:

* ``async_to_sync`` from a plain thread runs the coroutine on a loop cached
  for that thread (no new thread, no ``asyncio.run``), and the thread-sensitive
  calls it makes run in a greenlet on that same thread;
* thread hand-offs use one inbox per thread and one ``call_soon_threadsafe``
  back, with no ``concurrent.futures.Future`` per call;
* ``ThreadSensitiveContext`` borrows a parked thread instead of creating one.

And one addition, greenlet mode (U6): ``sync_to_async(f, executor="greenlet")``
runs ``f`` in a pooled greenlet on the event loop's own thread; inside it,
``async_to_sync`` switches back to the loop without any thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import sys
import warnings
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Literal, ParamSpec, Protocol, TypeVar, overload

from ._core import (
    GREENLET_HOME,
    HOME,
    BackgroundLoop,
    ExecutorTarget,
    Job,
    Lane,
    apply_context,
    await_in_greenlet,
    await_in_greenlet_home,
    close_default_scheduler,
    default_scheduler,
    in_bridge_greenlet,
    portal_call,
    run_in_greenlet,
    run_job_async,
    run_on_thread_loop,
    set_greenlet_hold_warning,
    set_lane_watchdog,
    thread_state,
)
from ._interface import iscoroutinefunction, markcoroutinefunction
from .errors import SchedulerError

__all__ = [
    "AsyncSingleThreadContext",
    "AsyncToSync",
    "SupportsSubmit",
    "SyncToAsync",
    "ThreadSensitiveContext",
    "async_to_sync",
    "iscoroutinefunction",
    "markcoroutinefunction",
    "set_greenlet_hold_warning",
    "set_lane_watchdog",
    "shutdown",
    "sync_to_async",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_P = ParamSpec("_P")
_R = TypeVar("_R")

_get_running_loop = asyncio._get_running_loop

#: The ThreadSensitiveContext in force for this task, if any.
_TSC: contextvars.ContextVar[ThreadSensitiveContext | None] = contextvars.ContextVar(
    "asgibridge_thread_sensitive_context", default=None
)


class SupportsSubmit(Protocol):
    """What an ``executor`` must offer: ``submit(fn, *args)``, as ``concurrent.futures`` has."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...


def _check_executor(executor: object, what: str) -> None:
    """Executors are duck-typed, as in asgiref: anything with a callable ``submit``."""
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"{what} must have a submit(fn, *args) method, as a "
            "concurrent.futures.ThreadPoolExecutor has; got an object of type "
            f"{type(executor).__name__} without one"
        )


def _loop_running_here() -> bool:
    if _get_running_loop() is not None:
        return True
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            return False
        return True
    return False


def _with_exc(fn: Callable[..., _R], exc: BaseException) -> Callable[..., _R]:
    """Run ``fn`` inside an ``except`` block for ``exc``, so ``sys.exc_info()`` matches the caller's."""

    def call(*args: Any, **kwargs: Any) -> _R:
        try:
            raise exc
        except BaseException:
            return fn(*args, **kwargs)

    return call


class AsyncToSync(Generic[_P, _R]):
    """Turns an awaitable callable into a sync callable. Use through :func:`async_to_sync`.

    Where the coroutine runs, in order:

    1. inside a greenlet started by ``sync_to_async(..., executor="greenlet")``:
       on that greenlet's loop, by switching to it (no thread involved);
    2. inside a thread started by ``sync_to_async``: on the loop that started
       it, while this thread serves thread-sensitive calls the coroutine makes;
    3. anywhere else: on a loop cached for this thread.

    With ``force_new_loop=True`` case 2 is skipped. Raises ``RuntimeError``
    (a :class:`~asgibridge.errors.SchedulerError`) when called on a thread
    that is running an event loop outside a bridge greenlet.
    """

    def __init__(
        self,
        awaitable: Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]],
        force_new_loop: bool = False,
    ) -> None:
        if not callable(awaitable) or (
            not iscoroutinefunction(awaitable)
            and not iscoroutinefunction(getattr(awaitable, "__call__", awaitable))  # noqa: B004
        ):
            warnings.warn("async_to_sync was passed a non-async-marked callable", stacklevel=2)
        self.awaitable = awaitable
        try:
            self.__self__ = self.awaitable.__self__  # type: ignore[union-attr]
        except AttributeError:
            pass
        self.force_new_loop = force_new_loop
        functools.update_wrapper(self, awaitable)

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        __traceback_hide__ = True
        fn: Callable[..., Any] = self.awaitable
        if type(self).main_wrap is not _MAIN_WRAP:  # instrumented: see main_wrap
            args = (self.main_wrap(fn, args, kwargs),)  # type: ignore[assignment]
            fn = _await_it
            kwargs = {}  # type: ignore[assignment]
        if in_bridge_greenlet():
            if self.force_new_loop:
                result: _R = await_in_greenlet(_run_in_pool_thread_loop(fn, args, kwargs))
                return result
            result = await_in_greenlet_home(_greenlet_call(fn, args, kwargs))
            return result
        if _loop_running_here():
            raise SchedulerError(
                "You cannot use AsyncToSync in the same thread as an async event loop - "
                "just await the async function directly. (To call async code from sync code "
                "that runs on the loop's thread, start that sync code with "
                "sync_to_async(func, executor='greenlet').)"
            )
        state = thread_state()
        job = state.job
        if job is not None and not self.force_new_loop:
            ref = job.ref
            if ref is not None and not ref.is_closed():
                return portal_call(ref, fn, args, kwargs, job)  # type: ignore[no-any-return]
        single = _ASTC.get()
        if single is not None:
            return single._call(fn, args, kwargs)  # type: ignore[no-any-return]
        return run_on_thread_loop(fn, args, kwargs)  # type: ignore[no-any-return]

    def __get__(self, parent: Any, objtype: Any) -> Callable[_P, _R]:
        """Bind as a method."""
        func = functools.partial(self.__call__, parent)
        return functools.update_wrapper(func, self.awaitable)

    async def main_wrap(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Instrumentation hook: the coroutine one call runs on the event loop.

        Called on the *calling* (sync) thread to create the coroutine, which
        is then awaited on the loop; it awaits ``fn(*args, **kwargs)`` and
        returns the result. APM agents wrap it (for example with
        ``wrapt.wrap_function_wrapper(asgibridge.sync, "AsyncToSync.main_wrap", ...)``,
        as New Relic does for asgiref) to carry their trace from the sync
        caller into the async code. While nobody wraps or overrides it, it is
        never called and costs nothing.
        """
        return await fn(*args, **kwargs)


async def _await_it(awaitable: Awaitable[_R]) -> _R:
    return await awaitable


_MAIN_WRAP = AsyncToSync.main_wrap


async def _greenlet_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """What ``async_to_sync`` awaits on the driver's task from a bridge greenlet.

    ``fn`` is called here, on the driver, where the loop is visible: an
    awaitable factory may need the loop to build its awaitable. The driver
    has set ``HOME = GREENLET_HOME`` (see :func:`await_in_greenlet_home`), so
    thread-sensitive calls made by ``fn`` come back to this thread.
    """
    return await fn(*args, **kwargs)


async def _run_in_pool_thread_loop(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    job = Job(run_on_thread_loop, (fn, args, kwargs), {}, contextvars.copy_context())
    return await run_job_async(job, default_scheduler().pool)


class SyncToAsync(Generic[_P, _R]):
    """Turns a sync callable into an awaitable one. Use through :func:`sync_to_async`.

    ``thread_sensitive=True`` (the default) runs the callable on one shared
    thread: the outermost sync thread if there is one (under
    ``async_to_sync``), else the thread of the enclosing
    :class:`ThreadSensitiveContext`, else one process-wide thread.
    ``thread_sensitive=False`` runs it on a bounded thread pool, or on
    ``executor`` when given. ``executor="greenlet"`` runs it in a greenlet on
    the event loop's thread (greenlet mode, U6): it must not block, except
    through ``async_to_sync`` which switches back to the loop.

    Raises ``TypeError`` for a coroutine function, or for an executor object
    combined with ``thread_sensitive=True``.
    """

    def __init__(
        self,
        func: Callable[_P, _R],
        thread_sensitive: bool = True,
        executor: SupportsSubmit | Literal["greenlet"] | None = None,
        context: contextvars.Context | None = None,
    ) -> None:
        if (
            not callable(func)
            or iscoroutinefunction(func)
            or iscoroutinefunction(getattr(func, "__call__", func))  # noqa: B004
        ):
            raise TypeError("sync_to_async can only be applied to sync functions.")
        greenlet_mode = False
        if isinstance(executor, str):
            if executor != "greenlet":
                raise TypeError(
                    "executor must be an object with a submit() method (a "
                    f"concurrent.futures.Executor), 'greenlet' or None, not {executor!r}"
                )
            greenlet_mode = True
            executor = None
        elif executor is not None:
            _check_executor(executor, "executor")
            if thread_sensitive:
                raise TypeError("executor must not be set when thread_sensitive is True")
        functools.update_wrapper(self, func)
        self.func = func
        self.context = context
        self._thread_sensitive = thread_sensitive
        self._greenlet = greenlet_mode
        self._executor = ExecutorTarget(executor) if executor is not None else None
        markcoroutinefunction(self)
        try:
            self.__self__ = func.__self__  # type: ignore[attr-defined]
        except AttributeError:
            pass

    async def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        __traceback_hide__ = True
        func: Callable[..., _R] = self.func
        if type(self).thread_handler is not _THREAD_HANDLER:  # instrumented: see thread_handler
            func = functools.partial(
                self.thread_handler,
                _get_running_loop(),
                sys.exc_info(),
                [],
                _run_child,
                functools.partial(func, *args, **kwargs),
            )
            args = ()  # type: ignore[assignment]
            kwargs = {}  # type: ignore[assignment]
        else:
            exc = sys.exc_info()[1]
            if exc is not None:
                func = _with_exc(func, exc)
        if self._greenlet:
            return await self._call_in_greenlet(func, args, kwargs)
        if self._thread_sensitive:
            home = HOME.get()
            if home is None:
                target: Any = _thread_sensitive_target()
            elif home is GREENLET_HOME:
                return await self._call_in_greenlet(func, args, kwargs)
            else:
                target = home
        else:
            target = self._executor or default_scheduler().pool
        context = self.context
        ctx = contextvars.copy_context() if context is None else context
        job = Job(func, args, kwargs, ctx)
        try:
            return await run_job_async(job, target)  # type: ignore[no-any-return]
        finally:
            if context is None and job.started:
                apply_context(ctx)

    async def _call_in_greenlet(
        self, func: Callable[..., _R], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _R:
        # No HOME here: the code this call awaits through async_to_sync gets
        # GREENLET_HOME from the driver (await_in_greenlet_home).
        if self.context is not None:
            return await run_in_greenlet(self.context.run, func, *args, **kwargs)
        return await run_in_greenlet(func, *args, **kwargs)

    def __get__(self, parent: Any, objtype: Any) -> Callable[_P, Coroutine[Any, Any, _R]]:
        """Bind as a method."""
        func = functools.partial(self.__call__, parent)
        return functools.update_wrapper(func, self.func)

    def thread_handler(
        self,
        loop: Any,
        exc_info: Any,
        task_context: list[Any],
        func: Callable[..., _R],
        *args: Any,
        **kwargs: Any,
    ) -> _R:
        """Instrumentation hook: runs on the worker, just before the sync function.

        Same shape as asgiref 3.13's: ``loop`` is the awaiting event loop
        (None under trio), ``exc_info`` the caller's ``sys.exc_info()``,
        ``task_context`` a list (unused here), and ``func(*args)`` runs the
        call; ``args[0]`` is a ``functools.partial`` of the wrapped function
        with its arguments. It runs on the worker thread, or in the greenlet
        in greenlet mode. APM agents wrap it (``wrapt.wrap_function_wrapper(
        asgibridge.sync, "SyncToAsync.thread_handler", ...)``) or a subclass
        overrides it, to carry their trace into the worker. While nobody
        does, it is never called and costs nothing.
        """
        __traceback_hide__ = True
        if exc_info[1] is not None:
            try:
                raise exc_info[1]
            except BaseException:
                return func(*args, **kwargs)
        return func(*args, **kwargs)


_THREAD_HANDLER = SyncToAsync.thread_handler


# ------------------------------------------------- asgiref's class-level state, as views
#
# Some code (asgiref's own tests, a few APM agents) reads asgiref's internal
# class attributes. They are mirrored here as read-mostly views of our own
# state, so that such code sees the same answers; nothing in asgibridge uses them.


class _ExecutorsView:
    """``AsyncToSync.executors``: ``.current`` names the sync thread of the enclosing
    ``async_to_sync`` (where thread-sensitive calls go), or None."""

    @property
    def current(self) -> object:
        return HOME.get()


class _ContextExecutorsView:
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


SyncToAsync.thread_sensitive_context = _TSC  # type: ignore[attr-defined]
SyncToAsync.context_to_thread_executor = _ContextExecutorsView()  # type: ignore[attr-defined]
AsyncToSync.executors = _ExecutorsView()  # type: ignore[attr-defined]


def _run_child(child: Callable[[], _R]) -> _R:
    return child()


def _thread_sensitive_target() -> Any:
    tsc = _TSC.get()
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
            _check_executor(executor, "ThreadSensitiveContext's executor")
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
            self._token = _TSC.set(self)
            # Calls in this block go to the executor, not to an enclosing sync thread.
            self._home_token = HOME.set(None)
        elif _TSC.get() is None:
            self._token = _TSC.set(self)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        token = self._token
        if token is None:
            return
        self._token = None
        if self._home_token is not None:
            HOME.reset(self._home_token)
            self._home_token = None
        _TSC.reset(token)
        self._exited = True
        lane, self._lane = self._lane, None
        if lane is not None:
            self._last = lane.ident
            default_scheduler().lanes.release(lane)
        if self._executor is None:
            # A context without an executor may be entered again, with a new thread.
            self._exited = False


#: The AsyncSingleThreadContext in force, if any.
_ASTC: contextvars.ContextVar[AsyncSingleThreadContext | None] = contextvars.ContextVar(
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
        if _ASTC.get() is None:
            self.token = _ASTC.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        token, self.token = self.token, None
        if token is None:
            return
        _ASTC.reset(token)
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()


@overload
def async_to_sync(
    *, force_new_loop: bool = False
) -> Callable[
    [Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]]], Callable[_P, _R]
]: ...


@overload
def async_to_sync(
    awaitable: Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]],
    *,
    force_new_loop: bool = False,
) -> Callable[_P, _R]: ...


def async_to_sync(
    awaitable: Callable[_P, Coroutine[Any, Any, _R]] | Callable[_P, Awaitable[_R]] | None = None,
    *,
    force_new_loop: bool = False,
) -> Any:
    """Make an async callable callable from sync code; usable as a decorator.

    ``async_to_sync(coro_fn)(*args)`` runs ``await coro_fn(*args)`` and returns
    its result, raising its exception with the traceback intact. See
    :class:`AsyncToSync` for where it runs. Context variable changes made by
    the coroutine are visible to the caller afterwards.
    """
    if awaitable is None:
        return lambda f: AsyncToSync(f, force_new_loop=force_new_loop)
    return AsyncToSync(awaitable, force_new_loop=force_new_loop)


@overload
def sync_to_async(
    *,
    thread_sensitive: bool = True,
    executor: SupportsSubmit | Literal["greenlet"] | None = None,
    context: contextvars.Context | None = None,
) -> Callable[[Callable[_P, _R]], Callable[_P, Coroutine[Any, Any, _R]]]: ...


@overload
def sync_to_async(
    func: Callable[_P, _R],
    *,
    thread_sensitive: bool = True,
    executor: SupportsSubmit | Literal["greenlet"] | None = None,
    context: contextvars.Context | None = None,
) -> Callable[_P, Coroutine[Any, Any, _R]]: ...


def sync_to_async(
    func: Callable[_P, _R] | None = None,
    *,
    thread_sensitive: bool = True,
    executor: SupportsSubmit | Literal["greenlet"] | None = None,
    context: contextvars.Context | None = None,
) -> Any:
    """Make a sync callable awaitable; usable as a decorator.

    :param thread_sensitive: run on one shared thread (see :class:`SyncToAsync`).
    :param executor: a ``concurrent.futures.Executor`` (requires
        ``thread_sensitive=False``), or ``"greenlet"`` for greenlet mode.
    :param context: run in this ``contextvars.Context`` instead of a copy of
        the caller's; changes then stay in it.
    :raises TypeError: ``func`` is a coroutine function, or the options conflict.
    """
    if func is None:
        return lambda f: SyncToAsync(
            f, thread_sensitive=thread_sensitive, executor=executor, context=context
        )
    return SyncToAsync(func, thread_sensitive=thread_sensitive, executor=executor, context=context)


def shutdown(timeout: float | None = 5.0) -> None:
    """Stop the process-wide worker threads ``sync_to_async`` started.

    They start again on next use. Calling this is optional: the threads are
    daemons and never delay interpreter exit.
    """
    close_default_scheduler(timeout)
