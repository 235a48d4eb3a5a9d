"""Starting the ASGI tasks of ``AsgiToWsgi`` requests: many per loop wake-up.

Theory of operation
-------------------
A request's WSGI thread cannot create its ASGI task itself; the task must be
created on the loop. Each WSGI thread appends its
:class:`~._exchange.Exchange` to :attr:`Launcher.queue` and posts
:meth:`Launcher.launch_all` to the loop only when no such callback is pending
(:attr:`Launcher.posted`), so under load one loop wake-up starts many
requests. The flag is cleared before the queue is drained: an append that
comes later posts again. Both sides run under the GIL; ``deque`` appends and
pops are atomic.

Each task runs in the context the WSGI thread copied for its request
(``contextvars``), and is kept in :attr:`Launcher.tasks` until it ends, so
that closing the bridge can wait for it (including background work).

This is inherent to owning an asyncio loop: ``create_task`` with a context
is the one asyncio call here (Python 3.10 has no ``context=`` argument, so
the task is created inside the context instead).
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._exchange import Exchange

__all__ = ["Launcher"]


class Launcher:
    """The tasks of one bridge in one process, and the queue of requests waiting for one."""

    __slots__ = ("loop", "posted", "queue", "tasks")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        #: The bridge's loop (``None`` until it starts in this process).
        self.loop = loop
        #: Requests waiting for their task, appended by WSGI threads.
        self.queue: deque[Exchange] = deque()
        #: A :meth:`launch_all` callback is on its way to the loop.
        self.posted = False
        #: Every request task still running; each removes itself when it ends.
        self.tasks: set[asyncio.Task[None]] = set()

    def launch_all(self) -> None:
        """Loop callback: start the ASGI task of every request queued since the last call."""
        self.posted = False  # before draining: a later append posts again
        queue = self.queue
        tasks = self.tasks
        assert self.loop is not None
        create_task = self.loop.create_task
        while queue:
            ex = queue.popleft()
            if sys.version_info >= (3, 11):
                task = create_task(ex.run(), context=ex.context)
            else:  # pragma: no cover - 3.10 copies the context it is created in
                task = ex.context.run(create_task, ex.run())
            ex.task = task
            ex.context = None  # type: ignore[assignment]  # the task holds it now
            tasks.add(task)
