"""The per-request :class:`~asgibridge._asgi.Exchange` and how its task is started.

``Exchange.__init__`` sets the :class:`~asgibridge._core.ThreadHome` fields
itself (one call less per request). These tests catch a field added to either
class and left unset, which would surface only as an ``AttributeError`` on a
rare path (a thread-sensitive job, the watchdog, a deadlock message).
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from asgibridge import AsgiToWsgi
from asgibridge._asgi import Exchange
from asgibridge._core import BackgroundLoop, ThreadHome, current_home, thread_state
from tests.support.scopes import cgi_environ as make_environ

# Set after construction by AsgiToWsgi.__call__, just before the task is launched.
LATER = {"context"}


def _slots(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return names


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never called
    raise AssertionError("not reached")


def test_a1_exchange_init_sets_every_slot_it_owns() -> None:
    """Every slot of Exchange and of ThreadHome has a value once __init__ returns."""
    bridge = AsgiToWsgi(_app, lifespan="off")
    try:
        state = thread_state()
        home = current_home(state)
        ex = Exchange(bridge, state, home)
        slots = _slots(Exchange)
        assert set(ThreadHome.__slots__) <= slots
        unset = sorted(name for name in slots - LATER if not hasattr(ex, name))
        assert unset == []
        assert (ex.inbox, ex.ident, ex.name) == (state.inbox, home.ident, home.name)
        assert (ex.busy_job, ex.busy_since) == (None, 0.0)
    finally:
        bridge.close()


_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("test_asgi_exchange_var")


def test_a1_request_tasks_honour_a_task_factory_on_a_shared_loop() -> None:
    """Request tasks are made with asyncio.Task directly only while the loop has no
    task factory; one set on a shared loop makes them, each in its request's context."""
    made: list[str] = []
    seen: list[str] = []

    def factory(loop: Any, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(_VAR.get("unset"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def set_factory(value: Any) -> None:
        asyncio.get_running_loop().set_task_factory(value)

    def get(bridge: AsgiToWsgi, value: str) -> bytes:
        token = _VAR.set(value)
        try:
            return b"".join(
                bridge(make_environ(), lambda status, headers, exc_info=None: lambda data: None)
            )
        finally:
            _VAR.reset(token)

    loop = BackgroundLoop("test-task-factory")
    bridge = AsgiToWsgi(app, lifespan="off", loop=loop)
    try:
        assert get(bridge, "plain") == b"ok"
        assert made == []
        loop.call(set_factory, factory)
        assert get(bridge, "factory") == b"ok"
        assert made == ["Exchange.run"]
        assert seen == ["plain", "factory"]
    finally:
        bridge.close()
        loop.close()


def test_a1_finish_waits_for_a_job_being_queued_and_moves_it_on(monkeypatch: Any) -> None:
    """finish() takes no lock on a plain request, yet a thread-sensitive job that submit()
    is queueing at that moment (it saw ``accepting`` set) is not stranded in the inbox:
    finish waits for it and hands it to the shared lane."""
    import threading
    import time

    from asgibridge._asgi import _wsgi_thread
    from asgibridge._core import Job, _scheduler

    moved: list[Job] = []

    class Lane:
        def submit(self, job: Job) -> None:
            moved.append(job)

    class Scheduler:
        def default_lane(self) -> Lane:
            return Lane()

    queueing = threading.Event()

    class SlowTrue:
        """``accepting`` while submit() reads it: the loop thread stalls right there."""

        def __bool__(self) -> bool:
            queueing.set()
            time.sleep(0.2)
            return True

    monkeypatch.setattr(_scheduler, "default_scheduler", Scheduler)
    monkeypatch.setattr(_wsgi_thread, "default_scheduler", Scheduler)
    bridge = AsgiToWsgi(_app, lifespan="off")
    try:
        state = thread_state()
        ex = Exchange(bridge, state, current_home(state))
        job = Job(print, (), {}, contextvars.copy_context())
        ex.accepting = SlowTrue()  # type: ignore[assignment]
        loop_side = threading.Thread(target=ex.submit, args=(job,))
        loop_side.start()
        assert queueing.wait(10)
        ex.finish()  # while submit() is still queueing the job
        loop_side.join(10)
        assert moved == [job]
        assert state.inbox.empty()
        late = Job(print, (), {}, contextvars.copy_context())
        ex.submit(late)  # after finish: straight to the lane
        assert moved == [job, late]
    finally:
        bridge.close()
