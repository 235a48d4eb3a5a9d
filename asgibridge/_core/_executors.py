"""Submitting a job, and awaiting it: the targets a job can go to, and :func:`run_job_async`.

Theory of operation
-------------------
A *target* is anything with ``submit(job)``: a :class:`~._pool.ThreadPool`,
a :class:`~._homes.ThreadHome` (a lane, or a sync thread serving its inbox
in the portal), or an :class:`ExecutorTarget`, which adapts a user's
``concurrent.futures``-style executor. The loop side sends a job and awaits
its outcome with :func:`run_job_async`, which is the backend's
:meth:`~._backends.LoopRef.run_job` (one waiter per job, settled on the
loop thread; cancellation passed on to a nested ``async_to_sync``, U5/U10).

To add an executor: give it ``submit(job)`` that makes a thread run
``run_job(job, thread_state())`` (after :func:`~._homes.current_home`, if
thread-sensitive calls may be sent back to it), and make sure a job that
will never run is reported with :func:`~._jobs.deliver` (see
:func:`_never_ran`), or its caller waits forever.
"""

from __future__ import annotations

from typing import Any

from ..errors import SchedulerError
from ._backends import current_loop_ref
from ._homes import current_home
from ._jobs import Job, deliver, run_job, thread_state

__all__ = ["ExecutorTarget", "check_executor", "parse_executor", "run_job_async"]


class ExecutorTarget:
    """Adapts a user-supplied executor to the job protocol.

    Any object with a ``submit(fn, *args)`` method works, as with asgiref
    (duck typing); a ``concurrent.futures.Executor`` is the usual one. When
    ``submit`` returns a future that ends without running the job (the
    executor was shut down with ``cancel_futures=True``, say), the awaiting
    caller gets a :class:`~asgibridge.errors.SchedulerError` instead of
    waiting forever.
    """

    __slots__ = ("executor",)

    def __init__(self, executor: Any) -> None:
        self.executor = executor

    def submit(self, job: Job) -> None:
        try:
            fut = self.executor.submit(_run_foreign, job)
        except RuntimeError as exc:
            raise SchedulerError(
                f"executor {self.executor!r} refused to run {job.name}(): {exc}. It has "
                "probably been shut down; pass an executor that is still running, or "
                "executor=None to use asgibridge's own pool."
            ) from exc
        add_done_callback = getattr(fut, "add_done_callback", None)
        if add_done_callback is not None:
            add_done_callback(lambda f: _never_ran(job, f))


def _never_ran(job: Job, fut: Any) -> None:
    """A foreign executor's future ended: report the job if it never started."""
    if job.started or job.aborted:
        return
    cancelled = getattr(fut, "cancelled", None)
    why = (
        "cancelled it"
        if cancelled is not None and cancelled()
        else "finished it without running it"
    )
    deliver(
        job,
        False,
        SchedulerError(
            f"the executor {why} before {job.name}() could start (was it shut down with "
            "cancel_futures=True?); the call did not run"
        ),
    )


def _run_foreign(job: Job) -> None:
    state = thread_state()
    current_home(state)
    run_job(job, state)


async def run_job_async(job: Job, target: Any) -> Any:
    """Send ``job`` to ``target`` (a pool, home or executor) and await its outcome.

    The current loop's :meth:`~._backends.LoopRef.run_job`: cancellation (U5)
    releases the awaiting task at once; the sync function keeps running in
    its thread until it returns, and its result is dropped. If it is blocked
    in ``async_to_sync``, the coroutine it waits for is cancelled too, so the
    cancellation reaches the sync code at its await point. (The hot path of
    ``sync_to_async`` calls ``current_loop_ref().run_job(job, target)``
    itself, which saves a coroutine frame.)
    """
    return await current_loop_ref().run_job(job, target)


def check_executor(executor: object, what: str) -> None:
    """Executors are duck-typed, as in asgiref: anything with a callable ``submit``."""
    if not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"{what} must have a submit(fn, *args) method, as a "
            "concurrent.futures.ThreadPoolExecutor has; got an object of type "
            f"{type(executor).__name__} without one"
        )


def parse_executor(executor: object, thread_sensitive: bool) -> tuple[bool, ExecutorTarget | None]:
    """``sync_to_async``'s ``executor=``: (greenlet mode?, the target for an executor object).

    Raises ``TypeError`` for a string other than ``"greenlet"``, an object
    without ``submit``, or an executor object with ``thread_sensitive=True``.
    """
    if isinstance(executor, str):
        if executor != "greenlet":
            raise TypeError(
                "executor must be an object with a submit() method (a "
                f"concurrent.futures.Executor), 'greenlet' or None, not {executor!r}"
            )
        return True, None
    if executor is None:
        return False, None
    check_executor(executor, "executor")
    if thread_sensitive:
        raise TypeError("executor must not be set when thread_sensitive is True")
    return False, ExecutorTarget(executor)
