"""The scheduler core: where sync code runs, and how it gets back to its loop.

Nothing in this package parses HTTP. Every thread, greenlet and event loop
that asgibridge uses is created here, lazily, and never at import time.
"""

from __future__ import annotations

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
from ._scheduler import (
    Scheduler,
    close_default_scheduler,
    default_scheduler,
    rehome_leftover_jobs,
)
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
    "rehome_leftover_jobs",
    "run_in_greenlet",
    "run_job_async",
    "run_on_thread_loop",
    "set_greenlet_hold_warning",
    "set_lane_watchdog",
    "thread_state",
]
