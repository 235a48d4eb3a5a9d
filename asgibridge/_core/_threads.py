"""Thread workers, thread-sensitive lanes, and the portal from a thread to its loop.

Theory of operation
-------------------
Every thread the core touches has one *inbox* (an :class:`~._inbox.Inbox`).
An inbox receives two kinds of message:

* a :class:`Job`: "run this sync function here, then tell the loop";
* a portal reply ``(marker, ok, value, context)``: "the coroutine you asked
  the loop to run has finished".

A thread that asks its loop to run a coroutine (``async_to_sync`` inside a
worker) does not simply block: it *serves its inbox* until its reply comes.
So thread-sensitive calls made by that coroutine can be sent back to the very
thread that is waiting, which is what asgiref's ``CurrentThreadExecutor``
does, with one queue and no ``concurrent.futures.Future`` per message.

Where a thread-sensitive call runs is decided by a *home*:

* a :class:`ThreadHome` (a lane thread, or a sync thread blocked in the
  portal): the job goes into that thread's inbox;
* :data:`GREENLET_HOME`: the outermost sync code is this loop's own thread
  (``async_to_sync`` from a plain thread runs the loop right there), so the
  job runs in a bridge greenlet on this thread, with no hand-off at all.

The hand-off cost is dominated by waking a sleeping thread on another CPU
(about 25 us per wake on a 2-core VM), so the design minimises wakes: one to
reach the worker, one to come back, nothing else (no executor future, no
``wrap_future`` chain, no shield).

Deadlocks: a thread-sensitive call whose lane is the current thread can
never run (the thread is busy running an event loop it started itself), and
raises :class:`~asgibridge.errors.DeadlockError` at once. A call that queues
behind a busy lane is watched; if it has not started after
``lane_watchdog_seconds`` a warning names the lane and the call holding it.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from queue import Empty
from typing import Any

from ..errors import DeadlockError, SchedulerError
from ._backends import LoopRef, current_loop_ref
from ._inbox import Inbox

__all__ = [
    "GREENLET_HOME",
    "HOME",
    "Job",
    "Lane",
    "LanePool",
    "ThreadHome",
    "ThreadPool",
    "apply_context",
    "portal_call",
    "run_job_async",
    "thread_state",
]

logger = logging.getLogger("asgibridge")

get_ident = threading.get_ident

#: Where thread-sensitive calls made in this context must run (set by async_to_sync).
HOME: contextvars.ContextVar[ThreadHome | object | None] = contextvars.ContextVar(
    "asgibridge_home", default=None
)
#: Sentinel home: run thread-sensitive calls in a greenlet on the current (loop) thread.
GREENLET_HOME = object()

_STOP = object()
_RELEASE = object()


def _local_storage() -> Any:
    """asgiref's ``Local`` storage class (``asgiref.local._Storage``) when asgiref is loaded.

    asgiref 3.13 tags each non-thread-critical ``Local``'s data with the
    thread that owns it, and only shows data tagged with the current thread.
    Whenever asgiref moves work to another thread on purpose it re-tags
    ("re-homes") that data. We do the same at each of our thread hops (U8),
    without importing asgiref: if it is not loaded, no ``Local`` exists.
    """
    mod = sys.modules.get("asgiref.local")
    return getattr(mod, "_Storage", None) if mod is not None else None


def rehome_locals() -> None:
    """Re-tag every asgiref ``Local`` storage in the current context with this thread (U8).

    The re-tagged copy shares the original's data dict. (No memo across calls:
    a parked thread must hold nothing of the requests it served.)
    """
    storage = _local_storage()
    if storage is None:
        return
    me = get_ident()
    for var, value in contextvars.copy_context().items():
        if value.__class__ is storage and value.thread_id != me:
            var.set(storage(me, value.data))


def apply_context(ctx: contextvars.Context) -> None:
    """Copy every variable of ``ctx`` whose value differs into the current context (U3).

    asgiref ``Local`` data that another thread owned is re-homed to this
    thread on the way (U8). Data the other side did not change (asgiref
    replaces the data dict on every write) keeps this thread's own object.
    """
    storage = _local_storage()
    me = get_ident() if storage is not None else 0
    for var, value in ctx.items():
        if storage is not None and value.__class__ is storage and value.thread_id != me:
            current = var.get(None)
            if (
                current.__class__ is storage
                and current.data is value.data
                and current.thread_id == me
            ):
                continue
            value = storage(me, value.data)
        else:
            try:
                if var.get() is value:
                    continue
            except LookupError:
                pass
        var.set(value)


def _call_rehomed(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    rehome_locals()
    return fn(*args, **kwargs)


# --------------------------------------------------------------------------- jobs


class Job:
    """One sync call on its way to a thread, and how to report back to the loop."""

    __slots__ = (
        "aborted",
        "args",
        "cancel_nested",
        "context",
        "fn",
        "kwargs",
        "nested",
        "ref",
        "reported",
        "settle",
        "started",
        "waiter",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        context: contextvars.Context,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.context = context
        self.ref: LoopRef | None = None
        self.settle: Callable[..., Any] | None = None
        self.waiter: Any = None
        self.started = False
        self.aborted = False
        self.cancel_nested: Callable[[], Any] | None = None
        #: The asyncio task of the coroutine this job's sync code awaits
        #: through async_to_sync right now; it returns True if it ended cancelled (U10).
        self.nested: asyncio.Task[bool] | None = None
        #: Set by a job function that has already reported its own outcome
        #: (a request runner that posts each request's result as it goes);
        #: the core then posts nothing when the function returns.
        self.reported = False

    @property
    def name(self) -> str:
        fn = self.fn
        return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or fn)


class _State(threading.local):
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.job: Job | None = None
        self.home: ThreadHome | None = None
        self.stash: dict[object, tuple[Any, ...]] = {}


_state = _State()


def _reset_after_fork() -> None:
    # The forking thread's inbox shares its eventfd with the parent: replace it.
    _state.__init__()  # type: ignore[misc]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def thread_state() -> _State:
    """This thread's inbox, current job and home."""
    return _state


def execute(job: Job, state: _State) -> tuple[bool, Any] | None:
    """Run ``job`` here; its outcome, or None when its caller gave up before it started."""
    if job.aborted:
        return None
    prev = state.job
    state.job = job
    job.started = True
    try:
        if _local_storage() is None:
            return True, job.context.run(job.fn, *job.args, **job.kwargs)
        return True, job.context.run(_call_rehomed, job.fn, job.args, job.kwargs)
    except BaseException as exc:
        return False, exc
    finally:
        state.job = prev


def deliver(job: Job, ok: bool, value: Any) -> None:
    """Post a job's outcome to whoever waits for it.

    Threads call this as the *last* thing before they sleep: the wake-up it
    causes is cheapest when the woken loop thread finds the GIL free.
    """
    if job.reported:
        return
    ref = job.ref
    if ref is None:  # a foreign caller waits on the job itself
        job.waiter.put((ok, value))
        return
    try:
        ref.post(job.settle, job, ok, value)
    except RuntimeError:
        # The loop is closed: nobody can be waiting for this result any more.
        pass


def run_job(job: Job, state: _State) -> None:
    """Run ``job`` on the current thread and post its outcome to the job's loop."""
    out = execute(job, state)
    if out is not None:
        deliver(job, *out)


def _serve_until(state: _State, marker: object) -> tuple[Any, ...]:
    """Serve this thread's inbox until the portal reply tagged ``marker`` arrives."""
    stash = state.stash
    inbox = state.inbox
    while True:
        if stash and marker in stash:
            return stash.pop(marker)
        msg = inbox.get()
        if msg.__class__ is Job:
            run_job(msg, state)
        elif msg.__class__ is tuple:
            if msg[0] is marker:
                return msg
            stash[msg[0]] = msg
        # anything else (a stray stop or release signal) is not for this frame


# ------------------------------------------------------------------ homes and lanes


class ThreadHome:
    """A thread that thread-sensitive jobs can be sent to (a lane, or a blocked sync thread)."""

    __slots__ = ("busy_job", "busy_since", "ident", "inbox", "name")

    def __init__(self, inbox: Inbox, ident: int, name: str) -> None:
        self.inbox = inbox
        self.ident = ident
        self.name = name
        self.busy_job: Job | None = None
        self.busy_since = 0.0

    def submit(self, job: Job) -> None:
        if self.ident == get_ident():
            raise DeadlockError(
                f"thread-sensitive call {job.name}() must run on thread {self.name!r}, but that "
                "is this very thread, and it is busy running an event loop that it started "
                "itself (asyncio.run() or loop.run_until_complete() inside sync code). "
                "Call async code from thread-sensitive sync code with async_to_sync(), which "
                "keeps the thread free to serve such calls, or pass thread_sensitive=False."
            )
        if self.busy_job is not None or not self.inbox.empty():
            _watchdog.watch(job, self)
        self.inbox.put(job)


def current_home(state: _State) -> ThreadHome:
    """The :class:`ThreadHome` of the calling thread (created on first use)."""
    home = state.home
    if home is None:
        t = threading.current_thread()
        home = ThreadHome(state.inbox, get_ident(), t.name)
        state.home = home
    return home


class Lane(ThreadHome):
    """A dedicated thread that runs thread-sensitive jobs one at a time, in order."""

    __slots__ = ("_pool", "thread")

    def __init__(self, name: str, pool: LanePool | None = None) -> None:
        super().__init__(Inbox(), 0, name)
        self._pool = pool
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()
        self.ident = self.thread.ident or 0

    def _main(self) -> None:
        state = _state
        state.inbox = inbox = self.inbox
        state.home = self
        idle_timeout = self._pool.idle_timeout if self._pool is not None else None
        while True:
            try:
                msg = inbox.get(timeout=idle_timeout) if self._pool is not None else inbox.get()
            except Empty:
                if self._pool is not None and self._pool._reap(self):
                    return
                continue
            if msg.__class__ is Job:
                self.busy_job = msg
                self.busy_since = time.monotonic()
                out = execute(msg, state)
                self.busy_job = None
                if out is not None:
                    deliver(msg, *out)
                # Parked, this thread must hold nothing of the call: its
                # arguments, result or error, its context, its loop.
                del msg, out
            elif msg is _RELEASE:
                if self._pool is not None:
                    self._pool._release(self)
            elif msg is _STOP:
                return

    def stop(self) -> None:
        self.inbox.put(_STOP)


class LanePool:
    """Idle lane threads, lent to :class:`ThreadSensitiveContext` blocks and returned after."""

    def __init__(self, name: str = "asgibridge-lane", idle_timeout: float = 60.0) -> None:
        self.name = name
        self.idle_timeout = idle_timeout
        self._idle: list[Lane] = []
        self._all: set[Lane] = set()
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._closed = False

    def acquire(self, avoid: int = 0) -> Lane:
        """An idle lane (the newest), or a new one; never the lane whose thread is ``avoid``."""
        with self._lock:
            if self._closed:
                raise SchedulerError("the lane pool is closed; create a new scheduler")
            idle = self._idle
            if idle:
                if idle[-1].ident != avoid:
                    return idle.pop()
                if len(idle) > 1:
                    return idle.pop(-2)
        lane = Lane(f"{self.name}-{next(self._counter)}", self)
        with self._lock:
            self._all.add(lane)
        return lane

    def release(self, lane: Lane) -> None:
        """Give ``lane`` back once every job already queued on it has run.

        An idle lane goes straight back to the pool (no wake-up of its thread);
        a busy one is told to return itself after its queued jobs.
        """
        if lane.busy_job is None and lane.inbox.empty():
            self._release(lane)
        else:
            lane.inbox.put(_RELEASE)

    def _release(self, lane: Lane) -> None:
        with self._lock:
            if self._closed:
                lane.stop()
            else:
                self._idle.append(lane)

    def _reap(self, lane: Lane) -> bool:
        with self._lock:
            if lane in self._idle:
                self._idle.remove(lane)
                self._all.discard(lane)
                return True
            return False

    def close(self, timeout: float | None = 5.0) -> None:
        with self._lock:
            self._closed = True
            lanes = list(self._all)
            self._idle.clear()
            self._all.clear()
        for lane in lanes:
            lane.stop()
        _join_all([lane.thread for lane in lanes], timeout)


def _join_all(threads: list[threading.Thread], timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    me = threading.current_thread()
    for t in threads:
        if t is me:
            continue
        t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


# ---------------------------------------------------------------------- thread pool


class ThreadPool:
    """A bounded pool of worker threads named ``{name}-N``.

    Idle workers wait on their own inbox and are reused newest-first (a warm
    thread wakes faster). Jobs beyond ``max_workers`` wait in a FIFO backlog.
    Workers idle for ``idle_timeout`` seconds exit. Nothing starts until the
    first job.
    """

    def __init__(
        self, max_workers: int, name: str = "asgibridge-worker", idle_timeout: float = 60.0
    ) -> None:
        if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1:
            raise ValueError(f"max_workers must be a positive int, got {max_workers!r}")
        self.max_workers = max_workers
        self.name = name
        self.idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._idle: list[Inbox] = []
        self._backlog: deque[Job] = deque()
        self._threads: set[threading.Thread] = set()
        self._counter = itertools.count(1)
        self._closed = False

    @property
    def busy(self) -> int:
        """Workers currently running a job."""
        with self._lock:
            return len(self._threads) - len(self._idle)

    @property
    def size(self) -> int:
        """Worker threads alive."""
        with self._lock:
            return len(self._threads)

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._closed:
                raise SchedulerError(
                    f"thread pool {self.name!r} is closed; it cannot run {job.name}()"
                )
            if self._idle:
                inbox = self._idle.pop()
            elif len(self._threads) < self.max_workers:
                # The first job goes in a list that the thread empties: a
                # Thread keeps its args for life, and so would keep the job.
                t = threading.Thread(
                    target=self._main,
                    args=([job],),
                    name=f"{self.name}-{next(self._counter)}",
                    daemon=True,
                )
                self._threads.add(t)
                t.start()
                return
            else:
                self._backlog.append(job)
                return
        inbox.put(job)

    def _main(self, first: list[Job]) -> None:
        job = first.pop()
        state = _state
        current_home(state)
        inbox = state.inbox
        lock = self._lock
        me = threading.current_thread()
        while True:
            out = execute(job, state)
            done = job
            # Book-keeping first, delivery last: the loop thread woken by
            # deliver() should find this thread asleep and the GIL free.
            with lock:
                nxt = self._backlog.popleft() if self._backlog else None
                closing = nxt is None and self._closed
                if closing:
                    self._threads.discard(me)
                elif nxt is None:
                    self._idle.append(inbox)
            if out is not None:
                deliver(done, *out)
            del done, out
            if nxt is not None:
                job = nxt
                continue
            if closing:
                return
            del job  # an idle thread keeps nothing of its last call alive
            nxt = self._wait(inbox, me)
            if nxt is None:
                return
            job = nxt

    def _wait(self, inbox: Inbox, me: threading.Thread) -> Job | None:
        """Sleep until a job arrives; None when this thread should exit."""
        while True:
            try:
                msg = inbox.get(timeout=self.idle_timeout)
            except Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        self._threads.discard(me)
                        return None
                msg = inbox.get()  # a job is being handed to us right now
            if msg is _STOP:
                with self._lock:
                    self._threads.discard(me)
                return None
            if msg.__class__ is Job:
                return msg

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop accepting jobs, let running ones finish, and join the threads."""
        with self._lock:
            self._closed = True
            idle = self._idle[:]
            self._idle.clear()
            threads = list(self._threads)
        for inbox in idle:
            inbox.put(_STOP)
        _join_all(threads, timeout)


class ExecutorTarget:
    """Adapts a user-supplied executor to the job protocol.

    Any object with a ``submit(fn, *args)`` method works, as with asgiref
    (duck typing); a ``concurrent.futures.Executor`` is the usual one. When
    ``submit`` returns a future that ends without running the job (the
    executor was shut down with ``cancel_futures=True``, say), the awaiting
    caller gets a :class:`~asgibridge.errors.SchedulerError` instead of
    waiting forever.
    """

    __slots__ = ("executor",)

    def __init__(self, executor: Any) -> None:
        self.executor = executor

    def submit(self, job: Job) -> None:
        try:
            fut = self.executor.submit(_run_foreign, job)
        except RuntimeError as exc:
            raise SchedulerError(
                f"executor {self.executor!r} refused to run {job.name}(): {exc}. It has "
                "probably been shut down; pass an executor that is still running, or "
                "executor=None to use asgibridge's own pool."
            ) from exc
        add_done_callback = getattr(fut, "add_done_callback", None)
        if add_done_callback is not None:
            add_done_callback(lambda f: _never_ran(job, f))


def _never_ran(job: Job, fut: Any) -> None:
    """A foreign executor's future ended: report the job if it never started."""
    if job.started or job.aborted:
        return
    cancelled = getattr(fut, "cancelled", None)
    why = (
        "cancelled it"
        if cancelled is not None and cancelled()
        else "finished it without running it"
    )
    deliver(
        job,
        False,
        SchedulerError(
            f"the executor {why} before {job.name}() could start (was it shut down with "
            "cancel_futures=True?); the call did not run"
        ),
    )


def _run_foreign(job: Job) -> None:
    state = _state
    current_home(state)
    run_job(job, state)


# ------------------------------------------------------------------- waiting on jobs


def _settle_asyncio(job: Job, ok: bool, value: Any) -> None:
    fut = job.waiter
    if not fut.done():
        fut.set_result((ok, value))


def _settle_trio(job: Job, ok: bool, value: Any) -> None:
    if job.aborted:
        return
    import outcome
    import trio

    trio.lowlevel.reschedule(job.waiter, outcome.Value((ok, value)))


async def run_job_async(job: Job, target: Any) -> Any:
    """Send ``job`` to ``target`` (a pool, home or executor) and await its outcome.

    Cancellation (U5): the awaiting task is released at once with the
    cancellation; the sync function keeps running in its thread until it
    returns, and its result is dropped. If it is blocked in
    ``async_to_sync``, the coroutine it waits for is cancelled too, so the
    cancellation reaches the sync code at its await point.
    """
    ref = current_loop_ref()
    job.ref = ref
    if ref.backend == "asyncio":
        fut = ref.loop.create_future()
        job.waiter = fut
        job.settle = _settle_asyncio
        target.submit(job)
        try:
            ok, value = await fut
        except asyncio.CancelledError:
            absorbed = await _pass_cancel_on(job, fut)
            if absorbed is None:
                raise
            ok, value = absorbed
    else:
        import trio

        job.waiter = trio.lowlevel.current_task()
        job.settle = _settle_trio
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
    # The traceback will hold this frame: keep neither the error (directly or
    # through the future's result) nor the job in it, or the error, the frame
    # and the call's arguments form a cycle that only a GC pass frees.
    job.waiter = None
    fut = job = None  # type: ignore[assignment]
    try:
        raise value
    finally:
        del value


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


# ---------------------------------------------------------------------------- portal

_markers = itertools.count()


async def outcome_of(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, Any]:
    """``await fn(*args, **kwargs)`` as ``(True, result)`` or ``(False, exception)``."""
    try:
        return True, await fn(*args, **kwargs)
    except BaseException as exc:
        return False, exc


async def _portal_main(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    inbox: Inbox,
    marker: object,
    home: ThreadHome,
    job: Job | None,
) -> bool:
    token = HOME.set(home)
    rehome_locals()
    try:
        if job is None or asyncio._get_running_loop() is not None:
            if job is not None:
                task = asyncio.current_task()
                job.cancel_nested = task.cancel if task is not None else None
                job.nested = task
            ok, value = await outcome_of(fn, args, kwargs)
        else:
            import trio

            # A trio system task cannot be cancelled from outside, so give the
            # awaiting side a scope to cancel (U5: cancellation reaches the sync code).
            with trio.CancelScope() as scope:
                job.cancel_nested = scope.cancel
                ok, value = await outcome_of(fn, args, kwargs)
    finally:
        HOME.reset(token)
        if job is not None:
            job.cancel_nested = None
            job.nested = None
    inbox.put((marker, ok, value, contextvars.copy_context()))
    return not ok and isinstance(value, asyncio.CancelledError)


def portal_call(
    ref: LoopRef,
    fn: Callable[..., Coroutine[Any, Any, Any]] | Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    job: Job | None = None,
) -> Any:
    """From a sync thread: run ``await fn(*args, **kwargs)`` on ``ref``'s loop and return it.

    While it waits, the thread serves its inbox, so thread-sensitive calls the
    coroutine makes run right here. Context changes made by the coroutine are
    copied back into the caller's context (U3).
    """
    state = _state
    home = current_home(state)
    marker = next(_markers)
    ctx = contextvars.copy_context()
    ref.start(_portal_main, (fn, args, kwargs, state.inbox, marker, home, job), ctx)
    saved = home.busy_job
    home.busy_job = None
    try:
        _, ok, value, out_ctx = _serve_until(state, marker)
    finally:
        home.busy_job = saved
    apply_context(out_ctx)
    if ok:
        return value
    raise value


# -------------------------------------------------------------------------- watchdog


class _Watchdog:
    """One lazily started thread that warns about jobs stuck behind a busy lane."""

    def __init__(self) -> None:
        self.seconds: float | None = 10.0
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Job, ThreadHome]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def watch(self, job: Job, home: ThreadHome) -> None:
        seconds = self.seconds
        if seconds is None:
            return
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._seq), job, home))
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._main, name="asgibridge-watchdog", daemon=True
                )
                self._thread.start()
            else:
                self._cond.notify()

    def _main(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while not self._heap:
                    if not cond.wait(timeout=30.0) and not self._heap:
                        self._thread = None
                        return
                deadline, _, job, home = self._heap[0]
                now = time.monotonic()
                if deadline > now:
                    cond.wait(timeout=deadline - now)
                    continue
                heapq.heappop(self._heap)
            if not job.started and not job.aborted:
                holder = home.busy_job
                held = time.monotonic() - home.busy_since if holder is not None else 0.0
                logger.warning(
                    "possible deadlock: thread-sensitive call %s() has waited %.1fs for "
                    "thread %r, which is still running %s (for %.1fs). If that call waits "
                    "for something only a later call on the same thread can do, it will never "
                    "finish: make one side thread_sensitive=False, or give each request its "
                    "own ThreadSensitiveContext.",
                    job.name,
                    self.seconds or 0.0,
                    home.name,
                    f"{holder.name}()" if holder is not None else "sync code outside asgibridge",
                    held,
                )


_watchdog = _Watchdog()


def set_lane_watchdog(seconds: float | None) -> None:
    """Warn when a thread-sensitive call waits longer than ``seconds`` for its lane.

    ``None`` turns the warning off. The default is 10 seconds.
    """
    if seconds is not None and (not isinstance(seconds, (int, float)) or seconds <= 0):
        raise ValueError(f"seconds must be a positive number or None, got {seconds!r}")
    _watchdog.seconds = None if seconds is None else float(seconds)
