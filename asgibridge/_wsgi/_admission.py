"""Admission: how many ``WsgiToAsgi`` requests run at once in thread mode.

Theory of operation
-------------------
See :class:`Admission`. The thread request path (:mod:`._thread`) admits
each request's job here instead of submitting it to the pool. The pool's
worker that finishes a request asks :class:`PoolAdmission` (the pool's
``after_job`` hook, in the critical section of its own book-keeping) for the
next queued one and runs it on the same thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from time import monotonic, process_time
from typing import Any, Generic, Protocol, TypeVar

import anyio

from .._core import LoopRef, ThreadPool, spawn

__all__ = ["Admission", "PoolAdmission"]


class _Entry(Protocol):
    """What a queue entry (a thread-mode request) shows the admission."""

    job: Any
    ref: LoopRef

    @property
    def gone(self) -> bool:
        """True once nobody waits for the request any more (then it is skipped)."""


E = TypeVar("E", bound=_Entry)


class Admission(Generic[E]):
    """Keeps the number of *runnable* worker threads low, and grows it when they block.

    Worker threads only run Python one at a time (the GIL), and every extra
    runnable thread adds GIL hand-offs: measured here, a Flask "hello" at 16
    requests in flight costs ~90 us per request with one or two runnable
    workers and ~160 us with sixteen. So at most ``soft`` jobs run at once;
    more wait in a FIFO queue. A worker that finishes a job takes the next
    queued request itself (see :class:`PoolAdmission`), exactly
    like a pool backlog, so a busy slot costs no thread wake-up.

    While requests are queued, one checker task per busy period wakes every
    ``GROW_DELAY`` seconds and decides whether the running jobs are blocked
    (I/O, sleeps, slow clients) rather than busy. They are when no job
    finished since its last look, or when the process used less than
    ``IDLE_CPU`` of one CPU over this period and the one before while
    requests waited: Python code that runs holds the GIL and burns CPU, so a
    process that sits idle with work queued is waiting on something. (Two
    periods, because one may be another process taking the CPU.) Then it
    starts more queued requests on threads of their own, doubling the running
    count each time, never past ``hard`` (the pool's ``max_workers``). An
    I/O-bound app thus gets its threads within milliseconds, however short
    each wait (jobs that wait 1 ms each finish in every period, so "nothing
    finished" alone never grew them); a CPU-light app keeps the GIL calm.
    :meth:`admit` makes the same test when it is about to queue a request
    (:meth:`_blocked_now`), over the time since it last looked, and then
    starts the queue's head at once: at light load, requests that wait on a
    database do not queue behind each other for the checker's two periods.

    The running count shrinks back as workers find the queue empty. It is
    not halved while requests stay queued and the process is busy: that was
    tried, and process CPU (granian's own threads, thread switches) said
    "busy" while an app that waits 1 ms per request still gained from more
    threads (0.59-0.74 of a 40-thread pool at ``-c32``, against 0.90 without).

    Queue entries are :class:`~._thread.ThreadExchange` objects (read here:
    ``job``, ``ref`` and ``gone``). An entry leaves the queue under the lock
    when its job is submitted, and entries whose request went away are
    skipped lazily, so every operation is O(1).

    Stalled uploads (rule C15): a worker whose ``wsgi.input`` read has waited
    ``STALL_AFTER`` seconds for the client's next bytes calls :meth:`stall`.
    Up to ``max_stalled`` such workers stop counting as ``active`` while they
    wait (:meth:`resume` counts them again), and a freed slot starts the next
    queued request at once. So clients that stop sending halfway through a
    body hold threads, not slots: with ``active + stalled`` jobs running and a
    submission only while ``active < hard``, the pool never needs more than
    ``hard + max_stalled`` threads. Past ``max_stalled``, a waiting worker
    keeps its slot (the old behaviour) until ``body_timeout`` frees it.
    """

    GROW_DELAY = 0.002
    #: The process's CPU time over a checker's period, as a share of the period,
    #: below which requests waiting in the queue mean the running ones are blocked.
    IDLE_CPU = 0.75
    #: Shortest and longest look back, in seconds, for :meth:`_blocked_now`.
    LOOK_MIN = 0.0002
    LOOK_MAX = 0.005
    #: Seconds a worker waits for the client in a ``wsgi.input`` read before it
    #: counts as stalled. Uploads that keep flowing never get that far.
    STALL_AFTER = 0.005

    __slots__ = (
        "_lock",
        "active",
        "checking",
        "done",
        "hard",
        "look_cpu",
        "look_wall",
        "max_stalled",
        "queue",
        "soft",
        "stalled",
        "submit",
    )

    def __init__(
        self, submit: Callable[[Any], None], soft: int, hard: int, max_stalled: int = 0
    ) -> None:
        self.submit = submit
        self.soft = min(soft, hard)
        self.hard = hard
        self.max_stalled = max_stalled
        self._lock = threading.Lock()
        self.active = 0
        self.stalled = 0
        self.done = 0
        self.checking = False
        self.queue: deque[E] = deque()
        self.look_wall = -1.0  # when _blocked_now() last looked (monotonic), and
        self.look_cpu = 0.0  # the process's CPU time then

    def stall(self) -> bool:
        """A worker waits for its client: stop counting it, start a queued request.

        Returns False (nothing changed) when ``max_stalled`` workers already wait.
        """
        with self._lock:
            if self.stalled >= self.max_stalled:
                return False
            self.stalled += 1
            self.active -= 1
            ex = self._pop_live() if self.active < self.soft else None
            if ex is not None:
                self.active += 1
        if ex is not None:
            self.submit(ex.job)
        return True

    def resume(self) -> None:
        """A stalled worker runs again (its data came, or its wait ended)."""
        with self._lock:
            self.stalled -= 1
            self.active += 1

    def admit(self, ex: E) -> None:
        """Start ``ex.job`` now, or queue it (and make sure a checker watches the queue)."""
        # ``with``, not acquire()/try: the loop's thread may be the main thread (a loop there,
        # or a caller's own), where a KeyboardInterrupt raised between acquire() and
        # ``try`` would leave the lock held; ``with`` has no such gap. Worker-only
        # paths (the pool's _main with its after_job, a request's push/pull) use acquire().
        check = False
        with self._lock:
            if self.active < self.soft and not self.queue:
                self.active += 1
                start: E | None = ex
            else:
                self.queue.append(ex)
                start = None
                if self.active < self.hard and self._blocked_now():
                    start = self._pop_live()  # the queue's head: it stays FIFO
                    if start is not None:
                        self.active += 1
                if self.queue:
                    check = not self.checking
                    self.checking = True
        if start is not None:
            self.submit(start.job)
        if check:
            spawn(ex.ref, self._check)

    def _blocked_now(self) -> bool:
        """Call with the lock held, about to queue: do the running requests look blocked?

        True when, since the last look (``LOOK_MIN`` to ``LOOK_MAX`` seconds
        ago), the process used less than ``IDLE_CPU`` of one CPU: with
        requests running, an idle process means they wait on something. So a
        request queued behind ones that wait on a database starts at once,
        without the checker's two periods. A look further back than
        ``LOOK_MAX`` (the start of a busy spell) only starts a new window.
        """
        now = monotonic()
        window = now - self.look_wall
        if window < self.LOOK_MIN:
            return False
        cpu = process_time()
        idle = window <= self.LOOK_MAX and cpu - self.look_cpu < self.IDLE_CPU * window
        self.look_wall = now
        self.look_cpu = cpu
        return idle

    def _pop_live(self) -> E | None:
        """Call with the lock held: the next queued request still worth running."""
        queue = self.queue
        while queue:
            ex = queue.popleft()
            if not ex.gone:
                return ex
        return None

    async def _check(self) -> None:
        """Grow past ``soft`` while queued requests wait behind blocked ones."""
        seen = -1
        idle = self.IDLE_CPU
        was_idle = False
        try:
            while True:
                wall = monotonic()
                cpu = process_time()
                await anyio.sleep(self.GROW_DELAY)
                # Was the process idle (its CPU time over the period, as a share of
                # the period) for this period and the one before? One alone may be
                # another process taking the CPU.
                now_idle = (process_time() - cpu) < idle * (monotonic() - wall)
                idle_twice = now_idle and was_idle
                was_idle = now_idle
                starting: list[E] = []
                with self._lock:
                    queue = self.queue
                    while queue and queue[0].gone:
                        queue.popleft()
                    if not queue:
                        self.checking = False
                        return
                    # Nothing finished for a whole period, or requests waited while
                    # the process sat idle: the running requests are blocked.
                    if self.done == seen or idle_twice:
                        # Double the running count, never past ``hard``.
                        for _ in range(min(max(1, self.active), self.hard - self.active)):
                            ex = self._pop_live()
                            if ex is None:
                                break
                            self.active += 1
                            starting.append(ex)
                    seen = self.done
                for ex in starting:
                    self.submit(ex.job)
        except BaseException:
            # Cancelled with its loop: let the next queued request start a new checker.
            with self._lock:
                self.checking = False
            raise


class PoolAdmission(Admission[E]):
    """An :class:`Admission` in front of one :class:`~asgibridge._core.ThreadPool`."""

    __slots__ = ("main", "pool")

    def __init__(self, pool: ThreadPool, soft: int, hard: int, max_stalled: int) -> None:
        super().__init__(pool.submit, soft, hard, max_stalled)
        self.pool = pool
        # One lock for both: admit() takes a worker in the critical section
        # that counts the request (no section of its own inside the pool), and
        # the pool's worker counts the end of a request, and takes the next
        # queued one, in the section where it does its own book-keeping.
        self._lock = pool.lock
        self.main: Callable[..., Any] | None = None  # what the admitted jobs run
        pool.after_job = self._after_job

    def _after_job(self, job: Any) -> Any:
        """The pool's ``after_job`` (lock held): one of ours ended; the next queued job, or None.

        Called after the job has posted its outcome (it does so itself), so
        the request is answered before this book-keeping: the other order
        doubles a lone request's latency.
        """
        if job.fn is not self.main:
            return None  # not a request (a lifespan hook run on the pool)
        # The request's end is counted here; the next queued one runs on this thread.
        self.done += 1
        if self.queue:
            ex = self._pop_live()
            if ex is not None:
                return ex.job
        self.active -= 1
        return None

    def admit(self, ex: E) -> None:
        """Start ``ex.job`` now, or queue it (and make sure a checker watches the queue)."""
        job = ex.job
        self.main = job.fn
        check = False
        with self._lock:  # not acquire()/try: see Admission.admit
            if self.active < self.soft and not self.queue:
                inbox = self.pool.claim(job)
                self.active += 1
            else:
                inbox = None
                self.queue.append(ex)
                if self.active < self.hard and self._blocked_now():
                    head = self._pop_live()  # the queue's head: it stays FIFO
                    if head is not None:
                        job = head.job
                        inbox = self.pool.claim(job)
                        self.active += 1
                if self.queue:
                    check = not self.checking
                    self.checking = True
        if inbox is not None:
            inbox.put(job)
        if check:
            spawn(ex.ref, self._check)
