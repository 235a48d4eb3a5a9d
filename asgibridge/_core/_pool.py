"""The worker pool behind ``thread_sensitive=False`` and ``WsgiToAsgi`` thread mode.

Theory of operation
-------------------
A :class:`ThreadPool` starts at most ``max_workers`` threads, lazily: the
first job of a new thread travels in the thread's start arguments, every
later one through the thread's own inbox. Idle workers wait on their inbox
and are reused newest-first (a warm thread wakes faster). Jobs beyond
``max_workers`` wait in a FIFO backlog that finishing workers take from
before they park. Workers idle for ``idle_timeout`` seconds exit.

A worker does its book-keeping (next job, park) *before* it delivers the
outcome of the job it just ran, so that the loop thread woken by the
delivery finds this thread asleep and the GIL free.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from queue import Empty

from ..errors import SchedulerError
from ._homes import current_home
from ._inbox import Inbox
from ._jobs import STOP, Job, deliver, execute, thread_state
from ._lanes import join_all

__all__ = ["ThreadPool"]

#: What a worker's wait got when ``idle_timeout`` passed with no message.
_TIMED_OUT = object()


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
        #: Called with :attr:`lock` held after each job a worker ran (before it
        #: looks at the backlog): the next job for the same thread, or None.
        #: Lets a front end that queues work of its own (``WsgiToAsgi``'s
        #: admission) count the end of a job and hand over its next one in the
        #: pool's own critical section.
        self.after_job: Callable[[Job], Job | None] | None = None

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

    @property
    def lock(self) -> threading.Lock:
        """The lock over the pool's book-keeping (see :meth:`claim`)."""
        return self._lock

    def submit(self, job: Job) -> None:
        """Run ``job`` on an idle worker, a new one, or the first to finish (the backlog)."""
        # ``with``, not acquire()/try: this may run on the main thread (a loop there,
        # or a caller's own), where a KeyboardInterrupt raised between acquire() and
        # ``try`` would leave the lock held; ``with`` has no such gap. Worker-only
        # paths (the pool's _main with its after_job, a request's push/pull) use acquire().
        with self._lock:
            inbox = self.claim(job)
        if inbox is not None:
            inbox.put(job)

    def claim(self, job: Job) -> Inbox | None:
        """With :attr:`lock` held: place ``job``; put it in the inbox returned, if any.

        Returns an idle worker's inbox (put ``job`` there once the lock is
        released), or None when ``job`` went to a new thread or the backlog.
        Lets a caller that guards its own state with the same lock take a
        worker in the same critical section.
        """
        if self._closed:
            raise SchedulerError(f"thread pool {self.name!r} is closed; it cannot run {job.name}()")
        if self._idle:
            return self._idle.pop()
        if len(self._threads) < self.max_workers:
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
        else:
            self._backlog.append(job)
        return None

    def _main(self, first: list[Job]) -> None:
        job = first.pop()
        state = thread_state()
        current_home(state)
        inbox = state.inbox
        lock = self._lock
        me = threading.current_thread()
        while True:
            out = execute(job, state)
            done = job
            # Book-keeping first, delivery last: the loop thread woken by
            # deliver() should find this thread asleep and the GIL free.
            lock.acquire()
            try:
                after = self.after_job
                nxt = after(job) if after is not None else None
                if nxt is None and self._backlog:
                    nxt = self._backlog.popleft()
                closing = nxt is None and self._closed
                if closing:
                    self._threads.discard(me)
                elif nxt is None:
                    self._idle.append(inbox)
            finally:
                lock.release()
            if out is not None and not done.reported:  # (deliver() would do nothing)
                deliver(done, *out)
            del done, out
            if nxt is not None:
                job = nxt
                continue
            if closing:
                return
            del job  # an idle thread keeps nothing of its last call alive
            # The common wake-up inline: a job arrives before the idle timeout.
            try:
                msg = inbox.get(self.idle_timeout)
            except Empty:
                msg = _TIMED_OUT
            if msg.__class__ is not Job:
                msg = self._wait(inbox, me, msg)
                if msg is None:
                    return
            job = msg
            msg = None  # parked, this thread keeps nothing of the job (only ``job`` does)

    def _wait(self, inbox: Inbox, me: threading.Thread, msg: object) -> Job | None:
        """Sleep until a job arrives; None when this thread should exit.

        ``msg``: what the caller's own wait got (:data:`_TIMED_OUT` after
        ``idle_timeout``), which was not a job.
        """
        while True:
            if msg is _TIMED_OUT:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        self._threads.discard(me)
                        return None
                msg = inbox.get()  # a job is being handed to us right now
            if msg is STOP:
                with self._lock:
                    self._threads.discard(me)
                return None
            if msg.__class__ is Job:
                return msg
            try:
                msg = inbox.get(timeout=self.idle_timeout)
            except Empty:
                msg = _TIMED_OUT

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop accepting jobs, let running ones finish, and join the threads."""
        with self._lock:
            self._closed = True
            idle = self._idle[:]
            self._idle.clear()
            threads = list(self._threads)
        for inbox in idle:
            inbox.put(STOP)
        join_all(threads, timeout)
