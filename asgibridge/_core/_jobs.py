"""Jobs: one sync call on its way to a thread, and the inbox messages a thread serves.

Theory of operation
-------------------
Every thread the core touches has one *inbox* (an :class:`~._inbox.Inbox`,
kept in :func:`thread_state`). An inbox receives these messages:

* a :class:`Job`: "run this sync function here, then tell the loop";
* a portal reply ``(marker, ok, value, context)``: "the coroutine you asked
  the loop to run has finished" (see :mod:`._portal`);
* :data:`STOP` and :data:`RELEASE`, which only lane and pool threads act on.

A thread runs a job with :func:`execute` (in the job's context, with
asgiref ``Local``s re-homed, U8) and reports its outcome with
:func:`deliver`: through the job's :class:`~._backends.LoopRef` to the
awaiting task (``job.settle`` on the loop thread), or to a foreign waiter
with a ``put`` method. A thread that waits for a portal reply serves its
inbox meanwhile (:func:`serve_until`), so thread-sensitive calls made by the
coroutine it waits for run right there.

The hand-off cost is dominated by waking a sleeping thread on another CPU
(about 25 us per wake on a 2-core VM), so the design minimises wakes: one to
reach the worker, one to come back, nothing else (no executor future, no
``wrap_future`` chain, no shield).
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._context import call_rehomed, local_storage
from ._inbox import Inbox

if TYPE_CHECKING:
    import asyncio

    from ._backends import LoopRef
    from ._homes import ThreadHome

__all__ = [
    "RELEASE",
    "STOP",
    "Job",
    "ThreadState",
    "deliver",
    "execute",
    "outcome_of",
    "run_job",
    "serve_until",
    "thread_state",
]

_modules = sys.modules

#: Inbox message: the lane or pool thread that reads it exits.
STOP = object()
#: Inbox message: the lane that reads it goes back to its pool.
RELEASE = object()


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


class ThreadState:
    """One thread's inbox, the job it runs now, its home, and portal replies kept for later.

    A plain object, one per thread, kept in a ``threading.local``
    (:func:`thread_state`): the threads that use it fetch it once and then read
    and write plain slots. (When this class was the ``threading.local``
    itself, every one of those reads and writes looked up the thread's dict:
    about 300 instructions each, three per job.)
    """

    __slots__ = ("home", "inbox", "job", "stash")

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.job: Job | None = None
        self.home: ThreadHome | None = None
        self.stash: dict[object, tuple[Any, ...]] = {}


_tls = threading.local()


def _reset_after_fork() -> None:
    # The forking thread's inbox shares its eventfd with the parent: replace it
    # (in place: a frame that holds the state across the fork sees the new inbox).
    state = getattr(_tls, "state", None)
    if state is not None:
        state.__init__()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def thread_state() -> ThreadState:
    """This thread's inbox, current job and home (made on the thread's first call)."""
    try:
        return _tls.state  # type: ignore[no-any-return]
    except AttributeError:
        state = _tls.state = ThreadState()
        return state


def execute(job: Job, state: ThreadState) -> tuple[bool, Any] | None:
    """Run ``job`` here; its outcome, or None when its caller gave up before it started."""
    if job.aborted:
        return None
    prev = state.job
    state.job = job
    job.started = True
    try:
        # The ``in`` test first: a call fewer when asgiref's Locals are not loaded.
        if "asgiref.local" not in _modules or local_storage() is None:
            return True, job.context.run(job.fn, *job.args, **job.kwargs)
        return True, job.context.run(call_rehomed, job.fn, job.args, job.kwargs)
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


def run_job(job: Job, state: ThreadState) -> None:
    """Run ``job`` on the current thread and post its outcome to the job's loop."""
    out = execute(job, state)
    if out is not None:
        deliver(job, *out)


def serve_until(state: ThreadState, marker: object) -> tuple[Any, ...]:
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


async def outcome_of(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, Any]:
    """``await fn(*args, **kwargs)`` as ``(True, result)`` or ``(False, exception)``."""
    try:
        return True, await fn(*args, **kwargs)
    except BaseException as exc:
        return False, exc
