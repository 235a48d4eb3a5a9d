"""The interface every backend implements: :class:`LoopRef`, :class:`Signal`, :class:`Background`.

A backend is one subclass of each; :class:`LoopRef` is also its factory for
the other two, so code that holds a ``LoopRef`` never asks which loop runs.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .._jobs import Job

__all__ = ["Background", "LoopRef", "Signal"]


class LoopRef:
    """A thread-safe handle on one running event loop, and the backend that runs it.

    ``post(callback, *args)`` runs ``callback(*args)`` on the loop and is safe
    to call from any thread. Everything else a backend does is a method here,
    chosen once when the ref is made (one subclass per backend), so the hot
    path pays one method call and never compares backend names.
    """

    __slots__ = ("loop", "post")

    #: The backend's name: ``"asyncio"`` or ``"trio"``.
    backend: ClassVar[str] = ""
    #: The exception a cancelled coroutine ends with on this backend.
    cancelled_error: ClassVar[type[BaseException]] = BaseException

    def __init__(self, loop: Any, post: Callable[..., Any]) -> None:
        self.loop = loop
        self.post = post

    def with_post(self, post: Callable[..., Any]) -> LoopRef:
        """A ref on the same loop whose ``post`` is ``post`` (see :func:`~.._mailbox.batching_ref`)."""
        return type(self)(self.loop, post)

    def start(
        self,
        coro_fn: Callable[..., Coroutine[Any, Any, Any]],
        args: tuple[Any, ...],
        context: contextvars.Context,
    ) -> None:
        """From any thread: run ``coro_fn(*args)`` as a new task on this loop, in ``context``."""
        raise NotImplementedError

    def is_closed(self) -> bool:
        """True when the loop can run nothing more."""
        raise NotImplementedError

    def local(self, key: str, factory: Callable[[LoopRef], Any]) -> Any:
        """This loop's value for ``key``, made by ``factory(self)`` on first use.

        The one mechanism for per-loop state: ``key`` names an attribute of an
        asyncio loop (it must start with ``_asgibridge_``, so that
        :func:`~._asyncio.close_loop` can drop it), or a trio ``RunVar``. Call
        it on the loop thread. A value is never None.
        """
        raise NotImplementedError

    async def run_job(self, job: Job, target: Any) -> Any:
        """Send ``job`` to ``target`` (a pool, home or executor) and await its outcome.

        Cancellation (U5): the awaiting task is released at once with the
        cancellation; the sync function keeps running in its thread until it
        returns, and its result is dropped. If it is blocked in
        ``async_to_sync``, the coroutine it waits for is cancelled too, so the
        cancellation reaches the sync code at its await point.
        """
        raise NotImplementedError

    async def outcome_nested(
        self, job: Job, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[bool, Any]:
        """``await fn(...)`` as an outcome pair, cancellable through ``job`` (U5, U10).

        The portal runs a job's ``async_to_sync`` coroutine with this, so that
        cancelling the task awaiting ``job`` reaches the coroutine.
        """
        raise NotImplementedError

    def signal(self) -> Signal:
        """A new :class:`Signal` for this loop."""
        raise NotImplementedError

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> Background:
        """Start ``fn()`` as a helper task on this loop (call on the loop thread)."""
        raise NotImplementedError

    async def checkpoint(self) -> None:
        """Let every other ready task run once."""
        raise NotImplementedError


class Signal:
    """A one-waiter wake-up flag for the loop thread.

    ``set()`` must be called on the loop thread (workers reach it through
    ``LoopRef.post``). A ``set()`` with nobody waiting is remembered.
    """

    __slots__ = ()

    def set(self) -> None:
        """Wake the waiter, or remember the wake-up for the next :meth:`wait`."""
        raise NotImplementedError

    async def wait(self) -> None:
        """Return once :meth:`set` has been called (at once if it already was)."""
        raise NotImplementedError


class Background:
    """A helper task that lives no longer than its request."""

    __slots__ = ()

    def cancel(self) -> None:
        """Cancel the task (it finishes at its next await)."""
        raise NotImplementedError

    async def join(self) -> None:
        """Wait until the task has finished, however it ends."""
        raise NotImplementedError
