"""Greenlet workers: sync code on the event loop's own thread.

Theory of operation
-------------------
A *driver* coroutine (``run_in_greenlet``) runs inside an ordinary async task.
It switches into a pooled *bridge greenlet* that runs the sync function. When
that function needs to wait for something async it calls
:func:`await_in_greenlet`, which switches back to the driver with the
awaitable; the driver awaits it *as part of its own task* and switches back
in with the outcome. No thread, lock or queue is involved: a round trip is
two greenlet switches plus one ``await``.

Consequences, all deliberate:

* The sync function shares the awaiting task's ``contextvars.Context``
  object, so context changes flow both ways for free (rule U3).
* Cancelling the driver's task throws the cancellation into the sync
  function at its await point, so ``finally`` blocks run.
* A sync function that blocks without going through the bridge blocks the
  whole loop. That is the price of greenlet mode and it is documented.
* The sync function sees **no running event loop** (rule U7), exactly as it
  would on a worker thread: the driver hides the loop (asyncio's running-loop
  slot, or trio's run context) each time it switches into the greenlet and
  restores it each time control comes back. Django's ``async_unsafe`` guard
  and asgiref's thread-critical ``Local`` decide "am I in sync code?" that
  way. The cost is two C calls per switch. (asyncio's running-loop slot is
  hidden inline here, for speed; any other backend's through the backend
  seam's ``hiding_switch``.)

Greenlets are pooled per thread: a fresh greenlet costs one mmap/munmap pair
(6-10 us on 3.11+), a parked one about 0.5 us. Bridge greenlets carry the
attribute ``__asgibridge_greenlet__ = True`` so that other greenlet bridges
can recognise them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from greenlet import getcurrent, greenlet

from ._backends import asyncio_running_loop, hiding_switch, set_asyncio_running_loop
from ._homes import GREENLET_HOME, HOME

__all__ = [
    "BridgeGreenlet",
    "await_in_greenlet",
    "await_in_greenlet_home",
    "greenlet_call",
    "in_bridge_greenlet",
    "run_in_greenlet",
    "set_greenlet_hold_warning",
]

_R = TypeVar("_R")

# Message tags, passed in 2-tuples between driver and worker.
_DONE = 0
_FAIL = 1
_AWAIT = 2
_VALUE = 3
_THROW = 4
_AWAIT_HOME = 5  # an await from async_to_sync: thread-sensitive calls come back here

#: How many parked greenlets a thread keeps for reuse.
POOL_LIMIT = 512

logger = logging.getLogger("asgibridge")

_get_running_loop = asyncio_running_loop
_set_running_loop = set_asyncio_running_loop


class _Settings:
    #: Warn when one greenlet holds the loop longer than this many seconds (None: never).
    hold_warning: float | None = 0.5


settings = _Settings()


def set_greenlet_hold_warning(seconds: float | None) -> None:
    """Warn when a greenlet-mode call runs longer than ``seconds`` without yielding the loop.

    Such a call blocks every other task on the loop, usually because it does
    blocking I/O outside the bridge. ``None`` turns the warning off; the
    default is 0.5 seconds.
    """
    if seconds is not None and (not isinstance(seconds, (int, float)) or seconds <= 0):
        raise ValueError(f"seconds must be a positive number or None, got {seconds!r}")
    settings.hold_warning = None if seconds is None else float(seconds)


def _held_too_long(fn: Callable[..., Any], held: float) -> None:
    logger.warning(
        "greenlet-mode call %s() held the event loop for %.3fs without yielding; every other "
        "task waited meanwhile. It blocks outside the bridge (socket I/O, time.sleep, a "
        "blocking driver?): run it in thread mode (executor='thread' / thread_sensitive), or "
        "make its waits go through async_to_sync.",
        getattr(fn, "__qualname__", fn),
        held,
    )


class BridgeGreenlet(greenlet):  # type: ignore[misc]
    """A pooled greenlet that runs sync functions for :func:`run_in_greenlet`."""

    __asgibridge_greenlet__ = True
    driver: Any = None


class _Pool(threading.local):
    def __init__(self) -> None:
        self.idle: list[BridgeGreenlet] = []


_pool = _Pool()


def _worker_main(job: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]) -> None:
    me = getcurrent()
    while True:
        fn, args, kwargs = job
        try:
            msg: tuple[int, Any] = (_DONE, fn(*args, **kwargs))
        except BaseException as exc:
            msg = (_FAIL, exc)
        del fn, args, kwargs
        # Park: hand the outcome to the driver and wait for the next job.
        job = me.driver.switch(msg)
        if job is None:
            return


def in_bridge_greenlet() -> bool:
    """True when the caller runs inside a bridge greenlet that a driver is awaiting."""
    return getattr(getcurrent(), "__asgibridge_greenlet__", False) is True


async def run_in_greenlet(fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
    """Run ``fn(*args, **kwargs)`` in a pooled greenlet on this thread and return its result.

    Inside ``fn``, :func:`await_in_greenlet` (and so ``async_to_sync``) waits
    for awaitables by switching back to this task. Exceptions from ``fn``
    propagate unchanged. Works on any event loop (asyncio or trio), because
    the driver only ever awaits what ``fn`` hands it. While ``fn`` runs, no
    event loop is visible to it (U7).
    """
    pool = _pool.idle
    g = pool.pop() if pool else BridgeGreenlet(_worker_main)
    current = getcurrent()
    g.driver = current
    g.gr_context = current.gr_context
    loop = _get_running_loop()
    switch = g.switch if loop is not None else hiding_switch(g.switch)
    limit = settings.hold_warning
    clock = time.perf_counter
    home_token: Any = None
    out: tuple[Any, ...] = (fn, args, kwargs)
    try:
        while True:
            start = clock()
            if loop is not None:
                _set_running_loop(None)
                try:
                    msg = switch(out)
                finally:
                    _set_running_loop(loop)
            else:
                msg = switch(out)
            if limit is not None and clock() - start > limit:
                _held_too_long(fn, clock() - start)
            tag, value = msg
            if tag == _AWAIT or tag == _AWAIT_HOME:
                if tag == _AWAIT_HOME and home_token is None:
                    # The sync caller runs on this thread, so thread-sensitive
                    # calls made by what it awaits come back here, in a
                    # greenlet. Set once per greenlet call, at the first
                    # async_to_sync, not per await: a set and reset per trip
                    # is a fifth of the round trip.
                    home_token = HOME.set(GREENLET_HOME)
                try:
                    out = (_VALUE, await value)
                except BaseException as exc:
                    out = (_THROW, exc)
                continue
            if tag == _DONE:
                return value  # type: ignore[no-any-return]
            raise value
    finally:
        if home_token is not None:
            HOME.reset(home_token)
        if not g.dead:
            g.driver = None
            g.gr_context = None
            if len(pool) < POOL_LIMIT:
                pool.append(g)
            else:
                g.parent = current  # finishing returns control here
                g.switch(None)


def await_in_greenlet(awaitable: Awaitable[_R]) -> _R:
    """From inside a bridge greenlet, wait for ``awaitable`` on the driver's task.

    Raises :class:`~asgibridge.errors.SchedulerError` when called anywhere
    else; use :func:`in_bridge_greenlet` to check first.
    """
    me = getcurrent()
    driver = getattr(me, "driver", None)
    if driver is None or not getattr(me, "__asgibridge_greenlet__", False):
        from ..errors import SchedulerError

        raise SchedulerError(
            "await_in_greenlet() was called outside a bridge greenlet; run the sync code "
            "with sync_to_async(..., executor='greenlet') first"
        )
    tag, value = driver.switch((_AWAIT, awaitable))
    if tag == _THROW:
        raise value
    return value  # type: ignore[no-any-return]


def await_in_greenlet_home(awaitable: Awaitable[_R]) -> _R:
    """:func:`await_in_greenlet` for ``async_to_sync``: what ``awaitable`` runs may call back.

    Thread-sensitive ``sync_to_async`` calls made while ``awaitable`` runs
    belong to the sync caller, which is this greenlet's thread: the driver
    sets ``HOME`` to :data:`GREENLET_HOME` for them (once per greenlet call).
    The caller has checked :func:`in_bridge_greenlet`.
    """
    tag, value = getcurrent().driver.switch((_AWAIT_HOME, awaitable))
    if tag == _THROW:
        raise value
    return value  # type: ignore[no-any-return]


async def greenlet_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """What ``async_to_sync`` awaits on the driver's task from a bridge greenlet.

    ``fn`` is called here, on the driver, where the loop is visible: an
    awaitable factory may need the loop to build its awaitable. The driver
    has set ``HOME = GREENLET_HOME`` (see :func:`await_in_greenlet_home`), so
    thread-sensitive calls made by ``fn`` come back to this thread.
    """
    return await fn(*args, **kwargs)
