"""Starting the ASGI tasks of ``AsgiToWsgi`` requests: many per loop wake-up.

Theory of operation
-------------------
A request's WSGI thread cannot create its ASGI task itself; the task must be
created on the loop. Each WSGI thread appends its
:class:`~._exchange.Exchange` to :attr:`Launcher.queue` and wakes the loop
only when no wake-up is pending (:attr:`Launcher.posted`), so under load one
loop wake-up starts many requests. Both sides run under the GIL; ``deque``
appends and pops are atomic.

How the loop is woken
    Where ``os.eventfd`` exists and the loop can watch a file descriptor
    (``add_reader``: the stdlib selector loops, uvloop), the launcher owns an
    eventfd that the loop watches (:func:`watch`, posted when the bridge
    starts, not waited for: requests before it runs are posted), and waking
    the loop is one
    ``eventfd_write`` on it (:attr:`Launcher.fd`). That is much cheaper than
    ``call_soon_threadsafe``: no ``Handle`` and context copy per wake-up, and
    no self-pipe, which asyncio drains until ``recv()`` raises
    ``BlockingIOError`` (an exception, with its ``strerror()`` text, on every
    wake-up): about 19,000 instructions less per request, measured. Elsewhere
    (no eventfd, a loop without ``add_reader``, or after :func:`unwatch`),
    :attr:`Launcher.fd` is -1 and the WSGI thread posts :meth:`launch_all`
    with ``call_soon_threadsafe``, as before.

    The order in :meth:`launch_all` matters for the eventfd: it reads the
    eventfd *before* clearing ``posted``, then drains the queue. A WSGI thread
    that saw ``posted`` cleared writes after that read, so the loop wakes again;
    one that saw it set appended before the drain. Either way no request is
    left in the queue without a wake-up on its way.

    The WSGI thread only writes to the eventfd while the loop is open
    (``AsgiToWsgi.__call__`` checks ``is_closed()``, and a closed loop makes
    it post instead, which raises as before). :func:`unwatch` stops watching
    on the loop thread, sets ``fd`` to -1 and runs :meth:`launch_all` once
    more, for a request that wrote just before. The eventfd is closed only
    when the launcher is freed, so no thread can write to a reused descriptor.

Each task runs in the context the WSGI thread copied for its request
(``contextvars``), and is kept in :attr:`Launcher.tasks` until it ends, so
that closing the bridge can wait for it (including background work).

This is inherent to owning an asyncio loop: making a task with a context
is the one asyncio call here (Python 3.10 has no ``context=`` argument, so
the task is created inside the context instead). On a loop without a task
factory (the bridge's own, always) that is ``asyncio.Task(...)``, exactly what
``loop.create_task()`` would call, without its frame; a factory set on a
shared loop is honoured.
"""

from __future__ import annotations

import asyncio
import os
import sys
from asyncio import Task
from collections import deque
from collections.abc import Coroutine
from contextvars import Context
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._exchange import Exchange

__all__ = ["Launcher", "eventfd_write", "unwatch", "watch"]

_HAS_EVENTFD = hasattr(os, "eventfd")
_TASK_TAKES_CONTEXT = sys.version_info >= (3, 11)  # once, not per task

if _HAS_EVENTFD:
    _eventfd_read = os.eventfd_read
    #: Wakes the loop through :attr:`Launcher.fd` (only called while that is >= 0).
    eventfd_write = os.eventfd_write
else:  # pragma: no cover - Launcher.fd stays -1 there, so this is never called

    def eventfd_write(fd: int, value: int) -> None:
        raise OSError("os.eventfd is not available on this platform")


class Launcher:
    """The tasks of one bridge in one process, and the queue of requests waiting for one."""

    __slots__ = ("_own_fd", "fd", "loop", "posted", "queue", "tasks")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        #: The bridge's loop (``None`` until it starts in this process).
        self.loop = loop
        #: Requests waiting for their task, appended by WSGI threads.
        self.queue: deque[Exchange] = deque()
        #: A :meth:`launch_all` callback is on its way to the loop.
        self.posted = False
        #: Every request task still running; each removes itself when it ends.
        self.tasks: set[asyncio.Task[None]] = set()
        #: The eventfd the loop watches (write 1 to wake it), or -1: post instead.
        self.fd = -1
        #: The eventfd this launcher made (closed when the launcher is freed), or -1.
        self._own_fd = -1

    def __del__(self) -> None:
        fd = self._own_fd
        if fd >= 0:
            self._own_fd = -1
            try:
                os.close(fd)
            except OSError:  # pragma: no cover
                pass

    def launch_all(self) -> None:
        """Loop callback: start the ASGI task of every request queued since the last call."""
        fd = self._own_fd
        if fd >= 0:  # first, before posted is cleared (module docstring)
            try:
                _eventfd_read(fd)
            except BlockingIOError:
                pass  # nothing written since the last read (the call from unwatch)
        self.posted = False  # before draining: a later append posts again
        queue = self.queue
        tasks = self.tasks
        loop = self.loop
        assert loop is not None
        # Task(...) is what loop.create_task() does (on a running loop, without a
        # task factory), one frame less; a factory set on a shared loop is honoured.
        factory = loop.get_task_factory() is not None
        while queue:
            ex = queue.popleft()
            if factory:
                task = _create_task(loop, ex.run(), ex.context)
            elif _TASK_TAKES_CONTEXT:
                task = Task(  # type: ignore[call-arg,unused-ignore]  # 3.10: no context=
                    ex.run(), loop=loop, context=ex.context
                )
            else:  # pragma: no cover - 3.10 copies the context it is created in
                task = ex.context.run(Task, ex.run(), loop=loop)
            ex.task = task
            ex.context = None  # type: ignore[assignment]  # the task holds it now
            tasks.add(task)


def _create_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None], context: Context
) -> asyncio.Task[None]:
    if sys.version_info >= (3, 11):
        return loop.create_task(coro, context=context)
    return context.run(loop.create_task, coro)  # pragma: no cover - 3.10


def watch(launcher: Launcher) -> None:
    """Loop callback: make the launcher's eventfd and watch it, where both are possible.

    Posted when the bridge starts; requests that come before it runs are posted.
    """
    loop = launcher.loop
    if not _HAS_EVENTFD or launcher.fd >= 0 or loop is None:
        return
    fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    try:
        loop.add_reader(fd, launcher.launch_all)
    except (NotImplementedError, AttributeError, OSError, ValueError):
        os.close(fd)  # a loop that cannot watch descriptors: the launcher posts instead
        return
    launcher._own_fd = fd
    launcher.fd = fd


async def unwatch(launcher: Launcher) -> None:
    """On the loop: stop watching the eventfd; later wake-ups are posted (module docstring)."""
    fd = launcher.fd
    if fd < 0:
        return
    launcher.fd = -1
    asyncio.get_running_loop().remove_reader(fd)
    launcher.launch_all()  # a request that wrote just before: its write is no longer watched
