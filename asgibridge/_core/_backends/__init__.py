"""The backend seam: everything that depends on which event loop runs (asyncio or trio).

Theory of operation
-------------------
Everything that crosses from a worker thread back to an event loop, or that
waits, parks or spawns on the loop side, goes through a :class:`LoopRef`:
``ref.post(callback, *args)`` is safe to call from any thread, and the other
loop-side operations are its methods (``start``, ``run_job``,
``outcome_nested``, ``signal``, ``spawn``, ``checkpoint``, ``local``,
``is_closed``). There is one ``LoopRef`` subclass per backend, in its own
module: :mod:`._asyncio` (the stdlib loop, uvloop) and :mod:`._trio`. The
backend is chosen once, when the ref is made; an asyncio loop keeps its ref
as an attribute, so :func:`current_loop_ref` costs a C call and a
``getattr``. No code outside this package compares backend names.

asyncio is detected with ``asyncio._get_running_loop()`` (a C call, no
exception). trio is only looked for when asyncio is not running, and only if
something else imported it already: asyncio users never import trio, nor
this package's trio module.

Per-loop state has one mechanism, :meth:`LoopRef.local` (attributes
``_asgibridge_*`` on an asyncio loop, a ``RunVar`` per key on trio).

Hiding the loop from sync code in a greenlet (U7) is the one operation the
greenlet driver does inline, because it happens twice per round trip:
:data:`asyncio_running_loop` / :data:`set_asyncio_running_loop` are
asyncio's C slots, and :func:`hiding_switch` wraps the switch for any other
backend.

Why not anyio for all of this
-----------------------------
anyio stays a runtime dependency, as the backend-neutral library for cold
paths: lifespan and shutdown timeouts (``anyio.move_on_after``), sleeps,
and the ``Dispatcher``'s task groups and memory streams, none of which run
per request. The per-request hot path uses this seam instead, because
anyio's neutrality is paid for on every call (it asks sniffio which library runs,
then dispatches to that backend), and that is measurable against a
request that costs a few microseconds in all. Instructions per operation
on CPython 3.11 and asyncio (cachegrind, ``(Ir(2N) - Ir(N)) / N``, N = 2000,
the operations of ``python -m benchmarks.backend_seam``; each includes one
turn of the event loop, the "bare" figure):

* a one-waiter wake-up, made, set by a loop callback and awaited: bare
  future 37,980; the seam's :class:`Signal` 42,138; ``anyio.Event`` 62,952
  (1.5 times the seam; 25,000 above the bare future against 4,200);
* yielding to the loop once: bare ``asyncio.sleep(0)`` 20,486;
  :meth:`LoopRef.checkpoint` 21,766; ``anyio.lowlevel.checkpoint()`` 29,175
  (1.3 times the seam).

In time (the benchmark, a loaded 2-core VM) anyio took 1.7 and 1.6 times as
long as the seam for the same two operations.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any

from ...errors import SchedulerError
from ._asyncio import AsyncioRef, asyncio_ref, close_loop
from ._base import Background, LoopRef, Signal

__all__ = [
    "AsyncioRef",
    "Background",
    "LoopRef",
    "Signal",
    "asyncio_ref",
    "asyncio_running_loop",
    "checkpoint",
    "close_loop",
    "current_loop_ref",
    "hiding_switch",
    "loop_running_here",
    "make_signal",
    "set_asyncio_running_loop",
    "spawn",
]

#: The running asyncio loop of this thread, or None (a C call that never raises).
asyncio_running_loop = asyncio._get_running_loop
#: Set (or with None, hide) this thread's running asyncio loop.
set_asyncio_running_loop = asyncio._set_running_loop

_get_running_loop = asyncio._get_running_loop


def _trio_backend() -> ModuleType:
    from . import _trio

    return _trio


def current_loop_ref() -> LoopRef:
    """The :class:`LoopRef` of the loop running in this thread.

    Raises :class:`~asgibridge.errors.SchedulerError` when no supported loop
    is running.
    """
    loop = _get_running_loop()
    if loop is not None:
        ref: LoopRef | None = getattr(loop, "_asgibridge_ref", None)
        if ref is None:
            ref = asyncio_ref(loop)
        return ref
    if "trio" in sys.modules:
        ref = _trio_backend().trio_ref()
        if ref is not None:
            return ref
    raise SchedulerError(
        "no running event loop: this must be awaited inside asyncio or trio "
        "(for example under asyncio.run(), trio.run() or an ASGI server)"
    )


def loop_running_here() -> bool:
    """True when this thread is running an asyncio loop or is inside a trio run."""
    if _get_running_loop() is not None:
        return True
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            return False
        return True
    return False


def hiding_switch(switch: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``switch`` (a greenlet's), made to hide a non-asyncio loop while the greenlet runs (U7).

    The caller hides asyncio's running loop itself, inline (see the module
    docstring); this covers trio's run context.
    """
    if "trio" not in sys.modules:
        return switch
    hidden: Callable[[Any], Any] = _trio_backend().TrioHidden(switch)
    return hidden


def make_signal(ref: LoopRef) -> Signal:
    """A :class:`Signal` for the loop behind ``ref`` (same as ``ref.signal()``)."""
    return ref.signal()


def spawn(ref: LoopRef, fn: Callable[[], Coroutine[Any, Any, None]]) -> Background:
    """Start ``fn()`` as a helper task on the current loop; cancel it with ``.cancel()``."""
    return ref.spawn(fn)


def checkpoint(ref: LoopRef) -> Coroutine[Any, Any, None]:
    """Let every other ready task run once: ``await checkpoint(ref)`` (or ``ref.checkpoint()``)."""
    return ref.checkpoint()
