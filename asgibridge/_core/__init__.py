"""The scheduler core: where sync code runs, and how it gets back to its loop.

Nothing in this package parses HTTP. Every thread, greenlet and event loop
that asgibridge uses is created here, lazily, and never at import time.

Modules, bottom up:

* :mod:`._inbox`: a thread's inbox (many producers, one consumer, GIL-free wake-up);
* :mod:`._backends`: the backend seam (asyncio, trio): ``LoopRef`` and per-loop state;
* :mod:`._context`: context variables and asgiref ``Local``s across a hop (U3, U8);
* :mod:`._jobs`: ``Job``, a thread's state, running and delivering a job;
* :mod:`._watchdog`, :mod:`._homes`: where thread-sensitive calls run, and the
  warning when they wait too long;
* :mod:`._lanes`, :mod:`._pool`: lane threads and the bounded worker pool;
* :mod:`._executors`: job targets (user executors) and awaiting a job;
* :mod:`._portal`: a sync thread awaiting a coroutine on a loop;
* :mod:`._greenlets`: sync code in a greenlet on the loop's own thread;
* :mod:`._loops`: loops for code that has none (per-thread, background);
* :mod:`._mailbox`: batched thread -> loop posts;
* :mod:`._scheduler`: the process-wide pool and lanes;
* :mod:`._sync_contexts`: ``ThreadSensitiveContext``, ``AsyncSingleThreadContext`` and the
  asgiref class-state views behind ``asgibridge.sync``.
"""

from __future__ import annotations

from ._backends import (
    Background,
    LoopRef,
    Signal,
    asyncio_running_loop,
    checkpoint,
    current_loop_ref,
    loop_running_here,
    make_signal,
    spawn,
)
from ._context import apply_context, await_it, run_child, with_exc
from ._executors import ExecutorTarget, check_executor, parse_executor, run_job_async
from ._greenlets import (
    BridgeGreenlet,
    await_in_greenlet,
    await_in_greenlet_home,
    greenlet_call,
    in_bridge_greenlet,
    run_in_greenlet,
    set_greenlet_hold_warning,
)
from ._homes import GREENLET_HOME, HOME, ThreadHome, current_home
from ._inbox import Inbox
from ._jobs import Job, ThreadState, run_job, thread_state
from ._lanes import Lane, LanePool
from ._loops import BackgroundLoop, run_in_pool_thread_loop, run_on_thread_loop
from ._mailbox import batching_ref, current_batching_ref
from ._pool import ThreadPool
from ._portal import portal_call
from ._scheduler import (
    Scheduler,
    close_default_scheduler,
    default_scheduler,
    rehome_leftover_jobs,
)
from ._sync_contexts import (
    CURRENT_ASTC,
    CURRENT_TSC,
    AsyncSingleThreadContext,
    ContextExecutorsView,
    ExecutorsView,
    SupportsSubmit,
    ThreadSensitiveContext,
    thread_sensitive_target,
)
from ._watchdog import set_lane_watchdog

__all__ = [
    "CURRENT_ASTC",
    "CURRENT_TSC",
    "GREENLET_HOME",
    "HOME",
    "AsyncSingleThreadContext",
    "Background",
    "BackgroundLoop",
    "BridgeGreenlet",
    "ContextExecutorsView",
    "ExecutorTarget",
    "ExecutorsView",
    "Inbox",
    "Job",
    "Lane",
    "LanePool",
    "LoopRef",
    "Scheduler",
    "Signal",
    "SupportsSubmit",
    "ThreadHome",
    "ThreadPool",
    "ThreadSensitiveContext",
    "ThreadState",
    "apply_context",
    "asyncio_running_loop",
    "await_in_greenlet",
    "await_in_greenlet_home",
    "await_it",
    "batching_ref",
    "current_batching_ref",
    "check_executor",
    "checkpoint",
    "close_default_scheduler",
    "current_home",
    "current_loop_ref",
    "default_scheduler",
    "greenlet_call",
    "in_bridge_greenlet",
    "loop_running_here",
    "parse_executor",
    "make_signal",
    "portal_call",
    "rehome_leftover_jobs",
    "run_child",
    "run_in_greenlet",
    "run_in_pool_thread_loop",
    "run_job",
    "run_job_async",
    "run_on_thread_loop",
    "set_greenlet_hold_warning",
    "set_lane_watchdog",
    "spawn",
    "thread_sensitive_target",
    "thread_state",
    "with_exc",
]
