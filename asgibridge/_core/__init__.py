"""The scheduler core: where sync code runs, and how it gets back to its loop.

Nothing in this package parses HTTP. Every thread, greenlet and event loop
that asgibridge uses is created here, lazily, and never at import time.
"""

from __future__ import annotations

import os
import threading

from ._backends import LoopRef, current_loop_ref
from ._greenlets import (
    await_in_greenlet,
    await_in_greenlet_home,
    in_bridge_greenlet,
    run_in_greenlet,
    set_greenlet_hold_warning,
)
from ._loops import BackgroundLoop, run_on_thread_loop
from ._primitives import Background, Signal, batching_ref, checkpoint, make_signal, spawn
from ._threads import (
    GREENLET_HOME,
    HOME,
    ExecutorTarget,
    Job,
    Lane,
    LanePool,
    ThreadHome,
    ThreadPool,
    apply_context,
    current_home,
    portal_call,
    run_job,
    run_job_async,
    set_lane_watchdog,
    thread_state,
)

__all__ = [
    "Background",
    "Signal",
    "batching_ref",
    "checkpoint",
    "current_home",
    "make_signal",
    "run_job",
    "spawn",
    "GREENLET_HOME",
    "HOME",
    "BackgroundLoop",
    "ExecutorTarget",
    "Job",
    "Lane",
    "LanePool",
    "LoopRef",
    "Scheduler",
    "ThreadHome",
    "ThreadPool",
    "apply_context",
    "await_in_greenlet",
    "await_in_greenlet_home",
    "close_default_scheduler",
    "current_loop_ref",
    "default_scheduler",
    "in_bridge_greenlet",
    "portal_call",
    "run_in_greenlet",
    "run_job_async",
    "run_on_thread_loop",
    "set_greenlet_hold_warning",
    "set_lane_watchdog",
    "thread_state",
]


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
