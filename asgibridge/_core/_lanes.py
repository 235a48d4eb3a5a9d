"""Lanes: dedicated threads that run thread-sensitive jobs one at a time, in order.

Theory of operation
-------------------
A :class:`Lane` is a :class:`~._homes.ThreadHome` with a thread of its own
that does nothing but serve its inbox. The process-wide default lane
(``asgibridge-sync``) runs thread-sensitive calls made outside any
``ThreadSensitiveContext``; a :class:`LanePool` lends parked lanes
(``asgibridge-lane-N``) to ``ThreadSensitiveContext`` blocks, so entering a
block costs no thread start.

Giving a lane back never cuts off work already queued on it: an idle lane
goes straight back to the pool, a busy one is sent :data:`~._jobs.RELEASE`
and returns itself once the jobs queued before it have run. A pooled lane
idle for ``idle_timeout`` seconds exits. While a lane runs a job it records
which one and since when (``busy_job``, ``busy_since``) for the watchdog.
"""

from __future__ import annotations

import itertools
import threading
import time
from queue import Empty

from ..errors import SchedulerError
from ._homes import ThreadHome
from ._inbox import Inbox
from ._jobs import RELEASE, STOP, Job, deliver, execute, thread_state

__all__ = ["Lane", "LanePool", "join_all"]


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
        state = thread_state()
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
            elif msg is RELEASE:
                if self._pool is not None:
                    self._pool._release(self)
            elif msg is STOP:
                return

    def stop(self) -> None:
        self.inbox.put(STOP)


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
            lane.inbox.put(RELEASE)

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
        join_all([lane.thread for lane in lanes], timeout)


def join_all(threads: list[threading.Thread], timeout: float | None) -> None:
    """Join ``threads`` (never the calling one) within ``timeout`` seconds in all."""
    deadline = None if timeout is None else time.monotonic() + timeout
    me = threading.current_thread()
    for t in threads:
        if t is me:
            continue
        t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
