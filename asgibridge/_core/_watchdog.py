"""The lane watchdog: a warning for thread-sensitive calls stuck behind a busy thread.

Theory of operation
-------------------
A thread-sensitive call that queues behind a busy home (a lane, or a sync
thread serving its inbox) may wait for something only a later call on the
same thread can provide: a deadlock that no code can detect. So each such
call is watched: one lazily started daemon thread keeps a heap of
deadlines, and if a call has not started ``seconds`` after it was queued,
it logs a warning that names the call, the thread and the call holding it.
The thread exits after 30 s with nothing to watch, and is started again
(also in a forked child) on the next watch.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._homes import ThreadHome
    from ._jobs import Job

__all__ = ["set_lane_watchdog", "watchdog"]

logger = logging.getLogger("asgibridge")


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
                self._warn(job, home)

    def _warn(self, job: Job, home: ThreadHome) -> None:
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


watchdog = _Watchdog()


def set_lane_watchdog(seconds: float | None) -> None:
    """Warn when a thread-sensitive call waits longer than ``seconds`` for its lane.

    ``None`` turns the warning off. The default is 10 seconds.
    """
    if seconds is not None and (not isinstance(seconds, (int, float)) or seconds <= 0):
        raise ValueError(f"seconds must be a positive number or None, got {seconds!r}")
    watchdog.seconds = None if seconds is None else float(seconds)
