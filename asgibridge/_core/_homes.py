"""Homes: where a thread-sensitive call must run.

Theory of operation
-------------------
A thread-sensitive ``sync_to_async`` call runs where the context variable
:data:`HOME` says:

* a :class:`ThreadHome` (a lane, or a sync thread blocked in the portal):
  the job goes into that thread's inbox. A thread that asks its loop to run
  a coroutine (``async_to_sync`` inside a worker) does not simply block: it
  *serves its inbox* until its reply comes, so thread-sensitive calls made
  by that coroutine are sent back to the very thread that is waiting, which
  is what asgiref's ``CurrentThreadExecutor`` does, with one queue and no
  ``concurrent.futures.Future`` per message;
* :data:`GREENLET_HOME`: the outermost sync code is this loop's own thread
  (``async_to_sync`` from a plain thread runs the loop right there), so the
  job runs in a bridge greenlet on this thread, with no hand-off at all;
* ``None``: no sync caller encloses the call; ``ThreadSensitiveContext``
  or the process-wide default lane decides.

Deadlocks: a thread-sensitive call whose home is the current thread can
never run (the thread is busy running an event loop it started itself), and
raises :class:`~asgibridge.errors.DeadlockError` at once. A call that queues
behind a busy home is handed to the watchdog (:mod:`._watchdog`).
"""

from __future__ import annotations

import contextvars
import threading
from typing import TYPE_CHECKING

from ..errors import DeadlockError
from ._watchdog import watchdog

if TYPE_CHECKING:
    from ._inbox import Inbox
    from ._jobs import Job, ThreadState

__all__ = ["GREENLET_HOME", "HOME", "ThreadHome", "current_home"]

get_ident = threading.get_ident

#: Where thread-sensitive calls made in this context must run (set by async_to_sync).
HOME: contextvars.ContextVar[ThreadHome | object | None] = contextvars.ContextVar(
    "asgibridge_home", default=None
)
#: Sentinel home: run thread-sensitive calls in a greenlet on the current (loop) thread.
GREENLET_HOME = object()


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
            watchdog.watch(job, self)
        self.inbox.put(job)


def current_home(state: ThreadState) -> ThreadHome:
    """The :class:`ThreadHome` of the calling thread (created on first use)."""
    home = state.home
    if home is None:
        t = threading.current_thread()
        home = ThreadHome(state.inbox, get_ident(), t.name)
        state.home = home
    return home
