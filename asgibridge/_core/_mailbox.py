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

How the loop is woken
    Where ``os.eventfd`` exists and the loop is an asyncio loop that can
    watch a file descriptor (``add_reader``: the stdlib selector loops,
    uvloop), the mailbox owns an eventfd that the loop watches
    (:meth:`Mailbox.watch`), and scheduling a drain is one ``eventfd_write``.
    That is much cheaper than ``call_soon_threadsafe``: no ``Handle`` and
    context copy per wake-up, and no self-pipe, which asyncio drains until
    ``recv()`` raises ``BlockingIOError`` (an exception, with its
    ``strerror()`` text, on every wake-up). Elsewhere (trio, no eventfd, a
    loop without ``add_reader``) the drain is posted with the loop's own
    ``post``, as before.

    The drain reads the eventfd *before* it clears ``_scheduled``: a producer
    that saw the flag cleared writes after that read, so the loop wakes again;
    one that saw it raised appended before the drain counts. A post to a
    closed loop raises ``RuntimeError`` as the loop's own ``post`` does
    (callers treat that as "nobody waits any more"); a loop that closes
    between that check and the write simply never drains, as with
    ``call_soon_threadsafe``. The eventfd is closed only when the mailbox is
    freed, so no producer can write to a reused descriptor. The drain is
    registered in an empty context: it runs the callbacks with no request's
    context variables (they read none), and keeps no request's context alive.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._backends import LoopRef, asyncio_running_loop, current_loop_ref

if TYPE_CHECKING:
    import asyncio

__all__ = ["Mailbox", "batching_ref", "current_batching_ref"]

logger = logging.getLogger("asgibridge.wsgi")

#: The per-loop key of the batching ref.
_BATCHED = "_asgibridge_wsgi_ref"

_HAS_EVENTFD = hasattr(os, "eventfd")
if _HAS_EVENTFD:
    _eventfd_write = os.eventfd_write
    _eventfd_read = os.eventfd_read


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

    __slots__ = ("_fd", "_items", "_loop", "_post", "_scheduled")

    def __init__(self, post: Callable[..., Any]) -> None:
        self._post = post
        self._items: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._scheduled = False
        #: The eventfd the loop watches (:meth:`watch`), or -1: drains are posted.
        self._fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, loop: asyncio.AbstractEventLoop) -> bool:
        """On ``loop``'s thread, before any post: wake ``loop`` through an eventfd it watches.

        Returns False (drains stay posted) where there is no eventfd or the
        loop cannot watch one.
        """
        if not _HAS_EVENTFD or self._fd >= 0:
            return self._fd >= 0
        fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            # In an empty context: the loop keeps this registration's context for good.
            contextvars.Context().run(loop.add_reader, fd, self._drain)
        except (NotImplementedError, AttributeError, OSError, ValueError):
            os.close(fd)
            return False
        self._loop = loop
        self._fd = fd
        return True

    def __del__(self) -> None:
        fd = self._fd
        if fd >= 0:
            self._fd = -1
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass

    def post(self, callback: Callable[..., Any], *args: Any) -> None:
        """From any thread: run ``callback(*args)`` on the loop, batched with other posts."""
        self._items.append((callback, args))
        if self._scheduled:
            return
        self._scheduled = True
        try:
            loop = self._loop
            if loop is None:
                self._post(self._drain)
            elif loop.is_closed():
                raise RuntimeError("Event loop is closed")
            else:
                _eventfd_write(self._fd, 1)
        except BaseException:
            self._scheduled = False
            raise

    def _drain(self) -> None:
        if self._loop is not None:
            # Before the flag is cleared (module docstring). Nothing to read only
            # when a drain ran for a write that an earlier drain's read took.
            try:
                _eventfd_read(self._fd)
            except BlockingIOError:
                pass
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
    box = Mailbox(ref.post)
    loop = asyncio_running_loop()
    if loop is not None and getattr(ref, "loop", None) is loop:  # asyncio, on its thread
        box.watch(loop)  # type: ignore[arg-type]  # narrowed by the test above
    return ref.with_post(box.post)


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
