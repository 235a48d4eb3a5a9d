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

This is inherent to owning an asyncio loop: making a task with a context
is the one asyncio call here (Python 3.10 has no ``context=`` argument, so
the task is created inside the context instead). On a loop without a task
factory (the bridge's own, always) that is ``asyncio.Task(...)``, exactly what
``loop.create_task()`` would call, without its frame; a factory set on a
shared loop is honoured.
"""

from __future__ import annotations

import asyncio
import sys
from asyncio import Task
from collections import deque
from collections.abc import Coroutine
from contextvars import Context
from typing import TYPE_CHECKING, Any

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
        loop = self.loop
        assert loop is not None
        # Task(...) is what loop.create_task() does (on a running loop, without a
        # task factory), one frame less; a factory set on a shared loop is honoured.
        factory = loop.get_task_factory() is not None
        while queue:
            ex = queue.popleft()
            if factory:
                task = _create_task(loop, ex.run(), ex.context)
            elif sys.version_info >= (3, 11):
                task = Task(ex.run(), loop=loop, context=ex.context)
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
