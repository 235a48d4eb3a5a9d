"""The process-wide workers behind ``sync_to_async``, and where leftover jobs go.

Theory of operation
-------------------
One :class:`Scheduler` per process holds a bounded :class:`~._pool.ThreadPool`
(for ``thread_sensitive=False``), one default :class:`~._lanes.Lane` (for
thread-sensitive calls outside any ``ThreadSensitiveContext``) and a
:class:`~._lanes.LanePool` (threads lent to ``ThreadSensitiveContext``
blocks). Nothing starts until first use; after ``fork()`` the child builds a
fresh scheduler, because the parent's threads do not exist there (U9).

A thread that stops serving its inbox (a WSGI request thread whose request
has ended) may still have thread-sensitive jobs queued in it:
:func:`rehome_leftover_jobs` moves them to the default lane, so they run
instead of waiting forever, and keeps any portal replies for the frames
that are still waiting for them.
"""

from __future__ import annotations

import os
import threading
from queue import Empty

from ._jobs import Job, ThreadState
from ._lanes import Lane, LanePool
from ._pool import ThreadPool

__all__ = ["Scheduler", "close_default_scheduler", "default_scheduler", "rehome_leftover_jobs"]


class Scheduler:
    """The process-wide workers behind ``sync_to_async``: a pool, a default lane, a lane pool.

    Everything starts on first use. :meth:`close` stops the threads; a later
    call to :func:`default_scheduler` builds a fresh scheduler.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = min(32, (os.cpu_count() or 1) + 4)
        self.pool = ThreadPool(max_workers, name="asgibridge-worker")
        self.lanes = LanePool(name="asgibridge-lane")
        self._lane: Lane | None = None
        self._lock = threading.Lock()
        self.pid = os.getpid()

    def default_lane(self) -> Lane:
        """The lane for thread-sensitive calls outside any ThreadSensitiveContext."""
        lane = self._lane
        if lane is None:
            with self._lock:
                lane = self._lane
                if lane is None:
                    lane = self._lane = Lane("asgibridge-sync")
        return lane

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop every thread this scheduler started and wait up to ``timeout`` for them."""
        lane = self._lane
        self._lane = None
        self.pool.close(timeout)
        self.lanes.close(timeout)
        if lane is not None:
            lane.stop()
            if lane.thread is not threading.current_thread():
                lane.thread.join(timeout)


_default: Scheduler | None = None
_default_lock = threading.Lock()


def default_scheduler() -> Scheduler:
    """The process-wide :class:`Scheduler`, created lazily and again after a fork."""
    global _default
    s = _default
    if s is None or s.pid != os.getpid():
        with _default_lock:
            s = _default
            if s is None or s.pid != os.getpid():
                s = _default = Scheduler()
    return s


def close_default_scheduler(timeout: float | None = 5.0) -> None:
    """Close the process-wide scheduler, if one was started in this process."""
    global _default
    with _default_lock:
        s, _default = _default, None
    if s is not None and s.pid == os.getpid():
        s.close(timeout)


def rehome_leftover_jobs(state: ThreadState) -> None:
    """Move the jobs left in a thread's inbox to the default lane; keep its portal replies.

    ``state`` is the thread's :func:`~._jobs.thread_state`. Call it on that
    thread once it will serve its inbox no more (its home stopped accepting
    jobs): every queued :class:`~._jobs.Job` goes to the process-wide
    default lane, and each portal reply is kept in ``state.stash`` for the
    frame that waits for it.
    """
    inbox = state.inbox
    while True:
        try:
            msg = inbox.get_nowait()
        except Empty:
            return
        if msg.__class__ is Job:
            default_scheduler().default_lane().submit(msg)
        elif msg.__class__ is tuple:
            state.stash[msg[0]] = msg
