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

import contextvars
import functools
import sys
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from ._core import (
    CURRENT_ASTC,
    CURRENT_TSC,
    GREENLET_HOME,
    HOME,
    AsyncSingleThreadContext,
    ContextExecutorsView,
    ExecutorsView,
    Job,
    SupportsSubmit,
    ThreadSensitiveContext,
    apply_context,
    asyncio_running_loop,
    await_in_greenlet,
    await_in_greenlet_home,
    await_it,
    close_default_scheduler,
    current_loop_ref,
    default_scheduler,
    greenlet_call,
    in_bridge_greenlet,
    loop_running_here,
    parse_executor,
    portal_call,
    run_child,
    run_in_greenlet,
    run_in_pool_thread_loop,
    run_on_thread_loop,
    set_greenlet_hold_warning,
    set_lane_watchdog,
    thread_sensitive_target,
    thread_state,
    with_exc,
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

_P = ParamSpec("_P")
_R = TypeVar("_R")

_get_running_loop = asyncio_running_loop
#: The ThreadSensitiveContext in force for this task, if any (asgiref's name for it).
_TSC = CURRENT_TSC


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
            fn = await_it
            kwargs = {}  # type: ignore[assignment]
        if in_bridge_greenlet():
            if self.force_new_loop:
                result: _R = await_in_greenlet(run_in_pool_thread_loop(fn, args, kwargs))
                return result
            result = await_in_greenlet_home(greenlet_call(fn, args, kwargs))
            return result
        if loop_running_here():
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
        single = CURRENT_ASTC.get()
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


_MAIN_WRAP = AsyncToSync.main_wrap


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
        greenlet_mode, target = parse_executor(executor, thread_sensitive)
        functools.update_wrapper(self, func)
        self.func = func
        self.context = context
        self._thread_sensitive = thread_sensitive
        self._greenlet = greenlet_mode
        self._executor = target
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
                run_child,
                functools.partial(func, *args, **kwargs),
            )
            args = ()  # type: ignore[assignment]
            kwargs = {}  # type: ignore[assignment]
        else:
            exc = sys.exc_info()[1]
            if exc is not None:
                func = with_exc(func, exc)
        if self._greenlet:
            return await self._call_in_greenlet(func, args, kwargs)
        if self._thread_sensitive:
            home = HOME.get()
            if home is None:
                target: Any = thread_sensitive_target()
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
            return await current_loop_ref().run_job(job, target)  # type: ignore[no-any-return]
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


# asgiref's internal class attributes, as read-mostly views of our state (see _core._sync_contexts).
SyncToAsync.thread_sensitive_context = _TSC  # type: ignore[attr-defined]
SyncToAsync.context_to_thread_executor = ContextExecutorsView()  # type: ignore[attr-defined]
AsyncToSync.executors = ExecutorsView()  # type: ignore[attr-defined]


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
