"""Context variables across a hop: copy them in, copy changes back, re-home asgiref ``Local``s.

Theory of operation
-------------------
Every hop the core makes (loop -> worker thread, worker -> loop through the
portal, loop -> greenlet) runs the far side in a ``contextvars.Context``:
a copy of the caller's on the way in, and on the way back
:func:`apply_context` copies into the caller's context every variable whose
value differs (rule U3).

asgiref 3.13 tags each non-thread-critical ``Local``'s data with the thread
that owns it, and only shows data tagged with the current thread. Whenever
asgiref moves work to another thread on purpose it re-tags ("re-homes") that
data. We do the same at each of our thread hops (U8), without importing
asgiref: if ``asgiref.local`` is not loaded, no ``Local`` exists and the
hop pays one dictionary look-up for finding that out.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

_R = TypeVar("_R")

__all__ = [
    "apply_context",
    "await_it",
    "call_rehomed",
    "local_storage",
    "rehome_locals",
    "run_child",
    "with_exc",
]

get_ident = threading.get_ident


def local_storage() -> Any:
    """asgiref's ``Local`` storage class (``asgiref.local._Storage``) when asgiref is loaded."""
    mod = sys.modules.get("asgiref.local")
    return getattr(mod, "_Storage", None) if mod is not None else None


def rehome_locals() -> None:
    """Re-tag every asgiref ``Local`` storage in the current context with this thread (U8).

    The re-tagged copy shares the original's data dict. (No memo across calls:
    a parked thread must hold nothing of the requests it served.)
    """
    storage = local_storage()
    if storage is None:
        return
    me = get_ident()
    for var, value in contextvars.copy_context().items():
        if value.__class__ is storage and value.thread_id != me:
            var.set(storage(me, value.data))


def apply_context(ctx: contextvars.Context) -> None:
    """Copy every variable of ``ctx`` whose value differs into the current context (U3).

    asgiref ``Local`` data that another thread owned is re-homed to this
    thread on the way (U8). Data the other side did not change (asgiref
    replaces the data dict on every write) keeps this thread's own object.
    """
    storage = local_storage()
    me = get_ident() if storage is not None else 0
    for var, value in ctx.items():
        if storage is not None and value.__class__ is storage and value.thread_id != me:
            current = var.get(None)
            if (
                current.__class__ is storage
                and current.data is value.data
                and current.thread_id == me
            ):
                continue
            value = storage(me, value.data)
        else:
            try:
                if var.get() is value:
                    continue
            except LookupError:
                pass
        var.set(value)


def call_rehomed(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``fn(*args, **kwargs)`` after re-homing the context's asgiref ``Local``s to this thread."""
    rehome_locals()
    return fn(*args, **kwargs)


def with_exc(fn: Callable[..., _R], exc: BaseException) -> Callable[..., _R]:
    """Run ``fn`` inside an ``except`` block for ``exc``, so ``sys.exc_info()`` matches the caller's."""

    def call(*args: Any, **kwargs: Any) -> _R:
        try:
            raise exc
        except BaseException:
            return fn(*args, **kwargs)

    return call


def run_child(child: Callable[[], _R]) -> _R:
    """``child()``: the ``func`` that ``SyncToAsync.thread_handler`` is handed (asgiref's shape)."""
    return child()


async def await_it(awaitable: Awaitable[_R]) -> _R:
    """``await awaitable``: what ``async_to_sync`` runs when ``main_wrap`` is instrumented."""
    return await awaitable
