"""Event loops for code that has none.

Theory of operation
-------------------
Two kinds, both created lazily (never at import) and both fork-safe:

* **The thread loop.** A plain thread that calls ``async_to_sync`` runs the
  coroutine on a loop cached for that thread, with ``run_until_complete``.
  That is about 9 us, against about 400 us for asgiref's new thread plus
  ``asyncio.run`` per call. Thread-sensitive ``sync_to_async`` calls made by
  that coroutine run in a greenlet *on this same thread* (rule U2: the
  outermost sync thread), so they need no hand-off at all. Like
  ``asyncio.run``, tasks still pending when the coroutine returns are
  cancelled. The loop is closed when its thread exits.

* **The background loop.** One loop running forever on its own daemon
  thread, for bridges that serve many sync threads at once and need one
  shared loop (``AsgiToWsgi``: lifespan and every request on the same loop).

Fork safety (rule U9): every cached loop remembers the pid that created it.
A child process after ``fork()`` sees a different pid and builds a fresh loop
and thread. It never closes, runs or even garbage-collects an inherited loop:
closing one would unregister the parent's self-pipe from the epoll instance
that parent and child share after ``fork()``, and the parent's loop would
never wake up again. Inherited loops are therefore kept alive, untouched, in
:data:`_inherited` for the life of the child (a few file descriptors per
forked loop; ``fork`` is done once per worker process in practice).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from ..errors import SchedulerError
from ._backends import LoopRef, asyncio_ref, close_loop
from ._context import apply_context
from ._executors import run_job_async
from ._homes import GREENLET_HOME, HOME
from ._jobs import Job, outcome_of
from ._portal import portal_call
from ._scheduler import default_scheduler

__all__ = [
    "FOREIGN_LOOP_NOTE",
    "BackgroundLoop",
    "explain_foreign_loop",
    "run_in_pool_thread_loop",
    "run_on_thread_loop",
]


#: Loops inherited from a parent process through fork(): kept alive and never closed (U9).
_inherited: list[asyncio.AbstractEventLoop] = []


def keep_inherited(loop: asyncio.AbstractEventLoop) -> None:
    """Hold a loop inherited through ``fork()`` forever, so nothing ever closes it here.

    ``BaseEventLoop.__del__`` closes an unclosed loop, and closing it in the
    child would remove the parent's file descriptors from their shared epoll
    instance. So its ``close`` is made a no-op too, for when interpreter exit
    frees :data:`_inherited` itself.
    """
    try:
        loop.close = _leave_open  # type: ignore[method-assign]
    except AttributeError:  # pragma: no cover - a loop class with no instance dict
        pass
    _inherited.append(loop)


def _leave_open() -> None:
    """``close`` of a loop inherited through fork(): leave the parent's loop alone."""


class _LoopCloser:
    """Closes a thread's cached loop when the thread's locals are dropped (thread exit).

    In a forked child the locals of the parent's other threads are dropped
    too, while the child starts: those loops belong to the parent and are
    kept, never closed (U9).
    """

    __slots__ = ("loop", "pid")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pid = os.getpid()

    def __del__(self) -> None:
        loop = self.loop
        if self.pid != os.getpid():
            keep_inherited(loop)
            return
        if not loop.is_running() and not loop.is_closed():
            try:
                close_loop(loop)
            except Exception:  # pragma: no cover - interpreter shutdown
                pass


class _ThreadLoop(threading.local):
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = 0
        self.closer: _LoopCloser | None = None
        #: Set when code on this thread's loop created a task: only then can tasks be
        #: left over when a call returns, and only then are they looked for.
        self.spawned = False


def _note_spawn(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
    """The task factory of the thread loops: an ordinary task, and a note that one exists."""
    _tl.spawned = True
    return asyncio.Task(coro, loop=loop, **kwargs)


_tl = _ThreadLoop()


def thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's cached event loop, created on first use and after a fork."""
    tl = _tl
    loop = tl.loop
    pid = os.getpid()
    if loop is None or tl.pid != pid or loop.is_closed():
        if tl.pid != pid and tl.closer is not None:
            # Inherited from the parent through fork(): never run or close it (U9).
            tl.closer = None  # its __del__ sees the other pid and keeps the loop
        loop = asyncio.new_event_loop()
        loop.set_task_factory(_note_spawn)
        tl.loop = loop
        tl.pid = pid
        tl.closer = _LoopCloser(loop)
    return loop


async def _thread_loop_main(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, Any, contextvars.Context]:
    token = HOME.set(GREENLET_HOME)
    ok, value = await outcome_of(fn, args, kwargs)
    HOME.reset(token)
    return ok, value, contextvars.copy_context()


def run_on_thread_loop(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run ``await fn(*args, **kwargs)`` on this thread's cached loop and return the result.

    The caller must not be running an event loop in this thread.
    """
    loop = thread_loop()
    ctx = contextvars.copy_context()
    coro = _thread_loop_main(fn, args, kwargs)
    # The main task is made directly, not through the loop's factory, so that only
    # tasks the coroutine itself creates mark the loop as having some to clean up.
    if sys.version_info >= (3, 11):
        task = asyncio.Task(coro, loop=loop, context=ctx)
    else:  # pragma: no cover
        task = ctx.run(asyncio.Task, coro, loop=loop)
    try:
        ok, value, out_ctx = loop.run_until_complete(task)
    finally:
        _cancel_leftovers(loop, task)
    apply_context(out_ctx)
    if ok:
        return value
    if isinstance(value, RuntimeError):
        explain_foreign_loop(value)
    raise value


# What asyncio says when a loop-bound object (a lock, an event, a future, so a client
# or a pool built on them) is used from a loop other than its own.
_FOREIGN_LOOP = ("is bound to a different event loop", "attached to a different loop")

FOREIGN_LOOP_NOTE = (
    "asgibridge: async_to_sync ran this call on an event loop kept for its thread (the "
    "calling thread, or a worker with force_new_loop=True), and the object named above "
    "belongs to another loop: most likely one that async_to_sync kept for another "
    "thread. An object tied to its loop (a client, a connection pool, a lock) cannot be "
    "shared between threads that way. Make it and use it through "
    "asgibridge.run_shared(), which runs every call on one loop for the whole process, "
    "or make one per thread. See docs/shared_loop.md."
)


def explain_foreign_loop(exc: RuntimeError) -> None:
    """Add :data:`FOREIGN_LOOP_NOTE` to ``exc`` if asyncio raised it for a foreign loop.

    Only on Python 3.11 and later (``BaseException.add_note``); at most once per exception.
    """
    text = str(exc)
    if not any(s in text for s in _FOREIGN_LOOP):
        return
    add_note = getattr(exc, "add_note", None)
    if add_note is not None and FOREIGN_LOOP_NOTE not in getattr(exc, "__notes__", ()):
        add_note(FOREIGN_LOOP_NOTE)


def _cancel_leftovers(loop: asyncio.AbstractEventLoop, main: asyncio.Task[Any]) -> None:
    """Cancel what the call left running, as ``asyncio.run`` would.

    Looking for leftovers (``asyncio.all_tasks``) walks every task of every
    loop in the process, an eighth of the call's cost; it is skipped when the
    call created no task (and the loop still has our task factory).
    """
    tl = _tl
    if not main.done():  # interrupted (KeyboardInterrupt): do not leave it half-run
        main.cancel()
    elif not tl.spawned and loop.get_task_factory() is _note_spawn:
        return
    tl.spawned = False
    _cancel_all(loop)


async def run_in_pool_thread_loop(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``await fn(*args, **kwargs)`` on the thread loop of a pool thread (``force_new_loop``)."""
    job = Job(run_on_thread_loop, (fn, args, kwargs), {}, contextvars.copy_context())
    return await run_job_async(job, default_scheduler().pool)


# ------------------------------------------------------------------ background loop

_background_loops: weakref.WeakSet[BackgroundLoop] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for bl in list(_background_loops):
        bl._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class BackgroundLoop:
    """An asyncio loop on a daemon thread, started on first use.

    Fork-safe: in a child process the parent's loop and thread are forgotten
    (the thread does not exist there) and the next use starts fresh ones.
    ``on_start`` callbacks registered with :meth:`add_start_hook` run in each
    process that starts the loop.
    """

    def __init__(self, name: str = "asgibridge-loop") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ref: LoopRef | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        _background_loops.add(self)

    @property
    def running(self) -> bool:
        """True when the loop thread is running in this process."""
        return self._loop is not None and self._pid == os.getpid()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called: the loop will not start again."""
        return self._closed

    @property
    def thread(self) -> threading.Thread | None:
        """The loop's thread when the loop runs in this process, else None."""
        return self._thread if self.running else None

    def ref(self) -> LoopRef:
        """Start the loop if needed and return its :class:`LoopRef`."""
        ref = self._ref
        if ref is not None and self._pid == os.getpid():
            return ref
        return self._start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (started if needed)."""
        return self.ref().loop  # type: ignore[no-any-return]

    def _start(self) -> LoopRef:
        with self._lock:
            if self._closed:
                raise SchedulerError(
                    f"background loop {self.name!r} is closed; create a new one to run more work"
                )
            if self._ref is not None and self._pid == os.getpid():
                return self._ref
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                try:
                    loop.run_forever()
                finally:
                    try:
                        _cancel_all(loop)
                        loop.run_until_complete(loop.shutdown_asyncgens())
                    finally:
                        close_loop(loop)

            t = threading.Thread(target=main, name=self.name, daemon=True)
            t.start()
            ready.wait()
            self._loop = loop
            self._thread = t
            self._pid = os.getpid()
            self._ref = ref = asyncio_ref(loop)
            return ref

    def _forget(self) -> None:
        if self._loop is not None and self._pid != os.getpid():
            keep_inherited(self._loop)  # the parent's: never close it here (U9)
        self._loop = None
        self._ref = None
        self._thread = None
        self._pid = 0
        self._lock = threading.Lock()

    def call(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, **kwargs: Any) -> Any:
        """From a thread that is not the loop's: ``await fn(*args, **kwargs)`` on the loop.

        Blocks until it finishes and returns its result or raises its exception.
        The calling thread serves thread-sensitive work for the coroutine while
        it waits, exactly as ``async_to_sync`` does.
        """
        ref = self.ref()
        if threading.get_ident() == (self._thread.ident if self._thread else None):
            raise SchedulerError(
                f"BackgroundLoop.call() was called on the loop thread {self.name!r} itself; "
                "await the coroutine directly instead"
            )
        return portal_call(ref, fn, args, kwargs)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Schedule ``callback(*args)`` on the loop from any thread."""
        self.ref().post(callback, *args)

    def close(self, timeout: float | None = 5.0) -> None:
        """Cancel pending tasks, stop the loop and join its thread. Idempotent."""
        with self._lock:
            self._closed = True
            loop, thread, pid = self._loop, self._thread, self._pid
            self._forget()
        if loop is None or pid != os.getpid() or thread is None:
            return
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:
            return
        if thread is not threading.current_thread():
            thread.join(timeout)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    pending = asyncio.all_tasks(loop)
    if not pending:
        return
    for t in pending:
        t.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
