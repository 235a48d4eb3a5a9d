"""A batching ``post``: thread -> loop wake-ups coalesced, one per batch instead of per message.

Theory of operation
-------------------
Every ``LoopRef.post`` from a worker is a system call (the loop's self-pipe,
or trio's wake-up socket) that also releases the GIL, inviting a GIL
ping-pong with the loop thread. A :class:`Mailbox` post only appends to a
deque; the first post into an empty mailbox schedules one ``drain`` on the
loop, which runs every callback queued by then, in order.

:func:`batching_ref` gives each loop one ref whose ``post`` goes through
one mailbox, kept as per-loop state (:meth:`~._backends.LoopRef.local`).
``WsgiToAsgi`` thread mode makes its jobs carry it, so every result of
every request on that loop, and ``async_to_sync`` inside the WSGI app,
share the batching.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from ._backends import LoopRef, asyncio_running_loop, current_loop_ref

__all__ = ["Mailbox", "batching_ref", "current_batching_ref"]

logger = logging.getLogger("asgibridge.wsgi")

#: The per-loop key of the batching ref.
_BATCHED = "_asgibridge_wsgi_ref"


class Mailbox:
    """Coalesces thread -> loop posts: one loop wake-up per batch, not per message.

    No lock: under the GIL each step below is atomic and the steps are
    sequentially consistent. A producer appends *before* it reads
    ``_scheduled``; the drain clears ``_scheduled`` *before* it counts the
    items. So a producer that sees the flag raised has appended before the
    drain counts, and its item is run by that drain; one that sees it
    lowered schedules a drain of its own. Two producers that both see it
    lowered schedule two drains, and the second finds nothing left: harmless.
    Only the loop thread pops, so a drain never finds fewer items than it
    counted.
    """

    __slots__ = ("_items", "_post", "_scheduled")

    def __init__(self, post: Callable[..., Any]) -> None:
        self._post = post
        self._items: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._scheduled = False

    def post(self, callback: Callable[..., Any], *args: Any) -> None:
        """From any thread: run ``callback(*args)`` on the loop, batched with other posts."""
        self._items.append((callback, args))
        if self._scheduled:
            return
        self._scheduled = True
        try:
            self._post(self._drain)
        except BaseException:
            self._scheduled = False
            raise

    def _drain(self) -> None:
        self._scheduled = False
        popleft = self._items.popleft
        # Only what was queued before this drain: later posts scheduled a drain of their own.
        for _ in range(len(self._items)):
            callback, args = popleft()
            try:
                callback(*args)
            except Exception:  # pragma: no cover - our callbacks do not raise
                logger.exception("asgibridge: a WsgiToAsgi loop callback failed")


def _batched(ref: LoopRef) -> LoopRef:
    return ref.with_post(Mailbox(ref.post).post)


def batching_ref(ref: LoopRef) -> LoopRef:
    """A :class:`LoopRef` for the same loop whose ``post`` goes through a :class:`Mailbox`.

    One per loop (per-loop state: :meth:`LoopRef.local`). Call it on the loop thread.
    """
    return ref.local(_BATCHED, _batched)  # type: ignore[no-any-return]


def current_batching_ref() -> LoopRef:
    """``batching_ref(current_loop_ref())``, in one call on asyncio once the ref exists."""
    loop = asyncio_running_loop()
    if loop is not None:
        ref: LoopRef | None = getattr(loop, _BATCHED, None)
        if ref is not None:
            return ref
    return batching_ref(current_loop_ref())
