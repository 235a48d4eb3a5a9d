"""The portal: from a sync thread, run a coroutine on a loop, and serve the thread's inbox meanwhile.

Theory of operation
-------------------
``async_to_sync`` inside a worker thread (and ``BackgroundLoop.call``) asks
the loop to run the coroutine as a new task (``LoopRef.start``) and then
does not simply block: it serves its own inbox (:func:`~._jobs.serve_until`)
until the task's reply ``(marker, ok, value, context)`` arrives there. While
the task runs, :data:`~._homes.HOME` names the waiting thread, so the
thread-sensitive calls the coroutine makes are sent back to the very thread
that is waiting (U2). Replies meant for an outer frame of the same thread
(nested portals) are kept in ``state.stash``.

Context changes made by the coroutine are copied back into the caller's
context (U3), and asgiref ``Local``s are re-homed both ways (U8). When the
waiting thread runs a job (a ``sync_to_async`` call), cancelling the task
awaiting that job reaches the coroutine through the backend's
:meth:`~._backends.LoopRef.outcome_nested` (U5, U10).
"""

from __future__ import annotations

import contextvars
import itertools
from collections.abc import Callable, Coroutine
from typing import Any

from ._backends import LoopRef
from ._context import apply_context, rehome_locals
from ._homes import HOME, ThreadHome, current_home
from ._inbox import Inbox
from ._jobs import Job, outcome_of, serve_until, thread_state

__all__ = ["portal_call"]

_markers = itertools.count()


async def _portal_main(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    inbox: Inbox,
    marker: object,
    home: ThreadHome,
    job: Job | None,
) -> bool:
    """The task the portal starts; True when it ended cancelled (``_pass_cancel_on`` asks)."""
    token = HOME.set(home)
    rehome_locals()
    try:
        if job is None:
            ok, value = await outcome_of(fn, args, kwargs)
        else:
            ok, value = await job.ref.outcome_nested(job, fn, args, kwargs)  # type: ignore[union-attr]
    finally:
        HOME.reset(token)
        if job is not None:
            job.cancel_nested = None
            job.nested = None
    inbox.put((marker, ok, value, contextvars.copy_context()))
    return not ok and job is not None and isinstance(value, job.ref.cancelled_error)  # type: ignore[union-attr]


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
    copied back into the caller's context (U3). ``job`` is the job this
    thread runs, when the call is made from inside one.
    """
    state = thread_state()
    home = current_home(state)
    marker = next(_markers)
    ctx = contextvars.copy_context()
    ref.start(_portal_main, (fn, args, kwargs, state.inbox, marker, home, job), ctx)
    saved = home.busy_job
    home.busy_job = None
    try:
        _, ok, value, out_ctx = serve_until(state, marker)
    finally:
        home.busy_job = saved
    apply_context(out_ctx)
    if ok:
        return value
    raise value
