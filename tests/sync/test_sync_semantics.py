"""Rules U7-U10: what sync code run by asgibridge observes is what asgiref shows it.

Django depends on each of these: ``async_unsafe`` and thread-critical ``Local``s
decide "am I in sync code?" by looking for a running loop (U7); translation,
timezone and urlconf state live in ``asgiref.local.Local`` (U8); pre-fork servers
fork with loops cached (U9); and request tasks get cancelled (U10).

Async tests run on asyncio and trio where the feature exists on trio. Every wait is
bounded.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.local import Local

import asgibridge
from asgibridge import sync as bsync
from asgibridge._core import default_scheduler
from asgibridge.errors import SchedulerError
from asgibridge.sync import (
    AsyncSingleThreadContext,
    SyncToAsync,
    ThreadSensitiveContext,
    async_to_sync,
    sync_to_async,
)
from tests.support.scopes import make_scope

pytestmark = pytest.mark.anyio

WAIT = 10.0

ASYNCIO_ONLY = pytest.mark.parametrize("anyio_backend", ["asyncio"])

ALL_MODES = pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="thread_sensitive"),
        pytest.param({"thread_sensitive": False}, id="pool"),
        pytest.param({"executor": "greenlet"}, id="greenlet"),
    ],
)


def loop_visible() -> bool:
    """What Django's async_unsafe asks: is an event loop running in this thread?"""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return True
    if "trio" in sys.modules:
        import trio

        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            return False
        return True
    return False


async def loop_visible_async() -> bool:
    return loop_visible()


# ----------------------------------------------------------------------------- U7


@ALL_MODES
async def test_u7_sync_code_sees_no_running_loop(anyio_backend: str, kwargs: Any) -> None:
    assert loop_visible()
    assert await sync_to_async(loop_visible, **kwargs)() is False
    assert loop_visible()  # and the loop is back for the caller


@ALL_MODES
async def test_u7_loop_visible_again_inside_async_to_sync(anyio_backend: str, kwargs: Any) -> None:
    def sync() -> tuple[bool, bool, bool]:
        before = loop_visible()
        inside = async_to_sync(loop_visible_async)()
        return before, inside, loop_visible()

    assert await sync_to_async(sync, **kwargs)() == (False, True, False)


def test_u7_async_to_sync_from_a_plain_thread_hides_the_loop_from_thread_sensitive_calls() -> None:
    """The coroutine runs on this thread's loop; sync code it calls back must not see it."""

    async def main() -> tuple[bool, bool, bool]:
        inner = await sync_to_async(loop_visible)()
        pooled = await sync_to_async(loop_visible, thread_sensitive=False)()
        return loop_visible(), inner, pooled

    assert async_to_sync(main)() == (True, False, False)
    assert loop_visible() is False


def test_u7_django_async_unsafe_accepts_sync_code_under_async_to_sync() -> None:
    """The SynchronousOnlyOperation that broke 214 Django tests (issue 9, cause 1)."""
    from django.utils.asyncio import async_unsafe

    @async_unsafe("an ORM call")
    def orm_call() -> str:
        return "ok"

    async def view() -> str:
        return await sync_to_async(orm_call)()

    assert async_to_sync(view)() == "ok"


async def test_u7_django_async_unsafe_still_refuses_async_code(anyio_backend: str) -> None:
    from django.core.exceptions import SynchronousOnlyOperation
    from django.utils.asyncio import async_unsafe

    @async_unsafe("an ORM call")
    def orm_call() -> str:
        return "ok"

    if anyio_backend == "asyncio":
        with pytest.raises(SynchronousOnlyOperation):
            orm_call()
    assert await sync_to_async(orm_call, executor="greenlet")() == "ok"


async def test_u7_greenlet_hides_the_loop_at_every_switch(anyio_backend: str) -> None:
    """The loop is hidden again after each trip back to async code, and shown during it."""

    def sync() -> list[bool]:
        seen = [loop_visible()]
        for _ in range(3):
            seen.append(async_to_sync(loop_visible_async)())
            seen.append(loop_visible())
        return seen

    assert await sync_to_async(sync, executor="greenlet")() == [False] + [True, False] * 3


async def test_u7_sniffio_answers_the_same_in_every_mode(anyio_backend: str) -> None:
    """sniffio in sync code: whatever a worker thread sees (a context variable, if the
    caller set one; otherwise nothing), a greenlet sees too."""
    import sniffio

    def sync() -> str:
        try:
            return sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            return "none"

    answers = {
        await sync_to_async(sync, **kwargs)()  # type: ignore[arg-type]
        for kwargs in ({}, {"thread_sensitive": False}, {"executor": "greenlet"})
    }
    assert len(answers) == 1
    assert sniffio.current_async_library() in ("asyncio", "trio")


async def test_u7_greenlet_exception_restores_the_loop(anyio_backend: str) -> None:
    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await sync_to_async(boom, executor="greenlet")()
    assert loop_visible()


# ----------------------------------------------------------------------------- U8

local = Local()
critical = Local(thread_critical=True)


@ALL_MODES
async def test_u8_local_set_in_async_is_seen_in_sync_and_back(
    anyio_backend: str, kwargs: Any
) -> None:
    local.value = "from async"

    def sync() -> str:
        seen = str(local.value)
        local.value = "from sync"
        return seen

    assert await sync_to_async(sync, **kwargs)() == "from async"
    assert local.value == "from sync"


def test_u8_local_crosses_async_to_sync_both_ways() -> None:
    local.value = "outer sync"

    async def coro() -> str:
        seen = str(local.value)
        local.value = "set in async"
        inner = await sync_to_async(lambda: str(local.value), thread_sensitive=False)()
        return f"{seen}|{inner}"

    assert async_to_sync(coro)() == "outer sync|set in async"
    assert local.value == "set in async"


@ALL_MODES
async def test_u8_local_crosses_nested_portal_hops(anyio_backend: str, kwargs: Any) -> None:
    """async -> sync (worker) -> async (portal, on the loop thread) -> sync: both ways."""
    local.value = "a"

    async def inner_async() -> str:
        seen = str(local.value)
        local.value = "c"
        return seen

    def sync() -> str:
        seen = str(local.value)
        local.value = "b"
        got = async_to_sync(inner_async)()
        return f"{seen}{got}{local.value}"

    assert await sync_to_async(sync, **kwargs)() == "abc"
    assert local.value == "c"


DJANGO_STATE_SCRIPT = textwrap.dedent(
    """
    import asyncio, zoneinfo
    import django
    from django.conf import settings
    settings.configure(USE_I18N=True, USE_TZ=True, LANGUAGE_CODE="en-us", ROOT_URLCONF=None)
    django.setup()
    from django.urls import get_urlconf, set_urlconf
    from django.utils import timezone, translation
    from asgibridge.sync import async_to_sync, sync_to_async

    def state():
        return (translation.get_language(), str(timezone.get_current_timezone()), get_urlconf())

    async def main():
        translation.activate("fr")
        timezone.activate(zoneinfo.ZoneInfo("Europe/Paris"))
        set_urlconf("my.urls")
        out = []
        for kw in ({}, {"thread_sensitive": False}, {"executor": "greenlet"}):
            out.append(await sync_to_async(state, **kw)())
        return out

    results = asyncio.run(main())
    # and the other way: set in sync code, read by async code under async_to_sync
    translation.activate("de")
    async def read():
        return translation.get_language()
    results.append(async_to_sync(read)())
    print(results)
    """
)


def test_u8_django_request_state_crosses_every_hop() -> None:
    """issue 9: translation, timezone and urlconf set in async code are seen by sync code."""
    proc = subprocess.run(
        [sys.executable, "-c", DJANGO_STATE_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    expected = [("fr", "Europe/Paris", "my.urls")] * 3 + ["de"]
    assert proc.stdout.strip() == repr(expected)


def test_u8_thread_critical_local_is_the_outer_threads_under_async_to_sync() -> None:
    """issue 9, cause 2: Django's DB connections are a thread-critical Local.

    Sync code that async_to_sync calls back (thread-sensitively) runs on the
    outer thread, and must see the outer thread's connection, not a second one.
    """
    critical.conn = "outer connection"

    async def view() -> str:
        return await sync_to_async(lambda: str(critical.conn))()

    assert async_to_sync(view)() == "outer connection"
    del critical.conn


async def test_u8_thread_critical_local_stays_per_thread(anyio_backend: str) -> None:
    critical.conn = "loop thread"

    def other() -> bool:
        return hasattr(critical, "conn")

    assert await sync_to_async(other, thread_sensitive=False)() is False
    assert critical.conn == "loop thread"


# ----------------------------------------------------------------------------- U9

FORK_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    from asgibridge import BackgroundLoop
    from asgibridge.sync import async_to_sync, sync_to_async

    async def hop():
        # Comes back through call_soon_threadsafe: needs the loop's self-pipe.
        return await sync_to_async(lambda: 42, thread_sensitive=False)()

    def bounded(fn):
        out = []
        t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
        t.start()
        t.join(10)
        return out[0] if out else "hang"

    assert async_to_sync(hop)() == 42          # the main thread caches a loop
    bg = BackgroundLoop()
    assert bounded(lambda: bg.call(hop)) == 42  # and a background loop runs

    def fork():
        pid = os.fork()
        if pid == 0:
            ok = async_to_sync(hop)() == 42 and bounded(lambda: bg.call(hop)) == 42
            if sys.argv[1] == "exit":
                sys.exit(0 if ok else 3)  # full interpreter shutdown in the child
            os._exit(0 if ok else 3)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    if sys.argv[2] == "main":
        rc = fork()
    else:
        box = []
        t = threading.Thread(target=lambda: box.append(fork()))
        t.start()
        t.join(20)
        rc = box[0] if box else "hang"
    import gc
    gc.collect()
    signal.alarm(10)  # a hang in the parent fails the test instead of blocking it
    print(rc, async_to_sync(hop)(), bounded(lambda: bg.call(hop)))
    """
)


@pytest.mark.parametrize(
    ("child_exit", "forking_thread"),
    [("os_exit", "main"), ("exit", "main"), ("os_exit", "other")],
)
def test_u9_fork_never_touches_the_parents_loops(child_exit: str, forking_thread: str) -> None:
    """A child that uses async_to_sync and BackgroundLoop leaves the parent's loops working."""
    proc = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, child_exit, forking_thread],
        capture_output=True,
        text=True,
        timeout=40,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "42", "42"], proc.stderr


# ---------------------------------------------------------------------------- U10


@ASYNCIO_ONLY
async def test_u10_cancellation_reaches_the_nested_task_and_can_be_absorbed(
    anyio_backend: str,
) -> None:
    """asgiref: a nested coroutine that absorbs the cancellation lets the call return."""
    started = threading.Event()

    async def nested() -> str:
        try:
            started.set()
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            return "absorbed"
        return "slept"

    def sync() -> str:
        return "sync saw " + async_to_sync(nested)()

    for kwargs in ({}, {"thread_sensitive": False}, {"executor": "greenlet"}):
        started.clear()
        task = asyncio.ensure_future(sync_to_async(sync, **kwargs)())  # type: ignore[arg-type]
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        assert await asyncio.wait_for(task, WAIT) == "sync saw absorbed", kwargs


@ASYNCIO_ONLY
async def test_u10_cancellation_not_absorbed_propagates(anyio_backend: str) -> None:
    started = threading.Event()
    sync_saw: list[str] = []

    async def nested() -> None:
        started.set()
        await asyncio.sleep(WAIT)

    def sync() -> None:
        try:
            async_to_sync(nested)()
        except asyncio.CancelledError:
            sync_saw.append("cancelled")
            raise

    for kwargs in ({}, {"thread_sensitive": False}, {"executor": "greenlet"}):
        started.clear()
        sync_saw.clear()
        task = asyncio.ensure_future(sync_to_async(sync, **kwargs)())  # type: ignore[arg-type]
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)
        for _ in range(1000):
            if sync_saw:
                break
            await asyncio.sleep(0.005)
        assert sync_saw == ["cancelled"], kwargs


def lane_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("asgibridge-lane"))


def test_u10_late_thread_sensitive_calls_do_not_keep_threads() -> None:
    """20 requests that each make one call after their context exited: no thread per request."""

    async def request() -> None:
        late: list[asyncio.Task[Any]] = []
        async with ThreadSensitiveContext():
            await sync_to_async(threading.get_ident)()

            async def later() -> int:
                await asyncio.sleep(0.001)
                return await sync_to_async(threading.get_ident)()

            late.append(asyncio.ensure_future(later()))
        await late.pop()

    async def main() -> None:
        for _ in range(20):
            await request()
            gc.collect()

    before = lane_threads()
    asyncio.run(main())
    gc.collect()
    deadline = time.monotonic() + WAIT
    while default_scheduler().lanes._idle != [] and time.monotonic() < deadline:
        lanes = default_scheduler().lanes
        if len(lanes._idle) == len(lanes._all):
            break
        time.sleep(0.01)
    lanes = default_scheduler().lanes
    assert len(lanes._idle) == len(lanes._all), "a lane is still lent out"
    assert lane_threads() - before <= 2


@ASYNCIO_ONLY
async def test_u10_late_calls_of_one_context_share_a_thread(anyio_backend: str) -> None:
    tsc = ThreadSensitiveContext()
    async with tsc:
        inside = await sync_to_async(threading.get_ident)()
    token = bsync._TSC.set(tsc)  # what a task created inside the block still sees
    try:
        late1 = await sync_to_async(threading.get_ident)()
        late2 = await sync_to_async(threading.get_ident)()
    finally:
        bsync._TSC.reset(token)
    assert late1 == late2
    assert inside != threading.get_ident()


# ------------------------------------------------------------- executors, hooks, ASTC


class DuckExecutor:
    """Not a concurrent.futures.Executor; it only has submit()."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="duck")
        self.calls = 0

    def submit(self, fn: Any, *args: Any) -> Any:
        self.calls += 1
        return self.pool.submit(fn, *args)


async def test_u1_duck_typed_executor(anyio_backend: str) -> None:
    duck = DuckExecutor()
    try:
        name = await sync_to_async(
            lambda: threading.current_thread().name, thread_sensitive=False, executor=duck
        )()
        assert name.startswith("duck") and duck.calls == 1
        async with ThreadSensitiveContext(executor=duck):
            assert (await sync_to_async(lambda: threading.current_thread().name)()).startswith(
                "duck"
            )
    finally:
        duck.pool.shutdown()


async def test_u1_executor_after_shutdown_is_a_clear_error(anyio_backend: str) -> None:
    pool = ThreadPoolExecutor(1)
    pool.shutdown()
    with pytest.raises(SchedulerError, match=r"refused to run.*shut down"):
        await sync_to_async(time.time, thread_sensitive=False, executor=pool)()


async def test_u1_executor_that_cancels_the_call_is_an_error_not_a_hang(anyio_backend: str) -> None:
    pool = ThreadPoolExecutor(1)
    gate = threading.Event()
    pool.submit(gate.wait, WAIT)  # the only worker is busy: our call queues
    call = sync_to_async(time.time, thread_sensitive=False, executor=pool)

    async def cancel_soon() -> None:
        await asyncio.sleep(0.05) if anyio_backend == "asyncio" else None
        pool.shutdown(wait=False, cancel_futures=True)
        gate.set()

    import anyio

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_soon)
        with pytest.raises(SchedulerError, match="cancelled it before"):
            with anyio.fail_after(WAIT):
                await call()


@ASYNCIO_ONLY
async def test_hooks_thread_handler_override_sees_a_partial_child(anyio_backend: str) -> None:
    """The shape APM agents rely on (asgiref's own canary test, #571)."""
    captured: dict[str, Any] = {}

    class Instrumented(SyncToAsync[Any, Any]):
        def thread_handler(
            self, loop: Any, exc_info: Any, task_context: Any, func: Any, *args: Any
        ) -> Any:  # type: ignore[override]
            child = args[0]
            captured["child"] = child
            captured["thread"] = threading.get_ident()
            child.keywords.pop("_agent_injected", None)
            return super().thread_handler(loop, exc_info, task_context, func, *args)

    def sync_function(value: int) -> int:
        return value

    assert await Instrumented(sync_function)(42, _agent_injected=object()) == 42
    child = captured["child"]
    assert isinstance(child, functools.partial)
    assert child.func is sync_function and child.args == (42,)
    assert captured["thread"] != threading.get_ident()
    # greenlet mode goes through the hook too
    assert await Instrumented(sync_function, executor="greenlet")(7, _agent_injected=1) == 7


def test_hooks_main_wrap_is_created_on_the_calling_thread() -> None:
    seen: dict[str, Any] = {}
    original = bsync.AsyncToSync.main_wrap

    def wrapper(self: Any, fn: Any, args: Any, kwargs: Any) -> Any:
        seen["created_on"] = threading.get_ident()
        return original(self, fn, args, kwargs)

    async def coro(x: int) -> int:
        seen["ran_on_loop"] = loop_visible()
        return x * 2

    bsync.AsyncToSync.main_wrap = wrapper  # type: ignore[method-assign]
    try:
        assert async_to_sync(coro)(21) == 42
    finally:
        bsync.AsyncToSync.main_wrap = original  # type: ignore[method-assign]
    assert seen == {"created_on": threading.get_ident(), "ran_on_loop": True}


async def test_hooks_thread_handler_wrapped_on_the_class(anyio_backend: str) -> None:
    """wrapt-style: the class attribute is replaced; every call goes through it."""
    calls: list[str] = []
    original = SyncToAsync.thread_handler

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    SyncToAsync.thread_handler = wrapper  # type: ignore[method-assign]
    try:
        assert await sync_to_async(lambda: 5)() == 5
        try:
            raise KeyError("in flight")
        except KeyError:
            assert await sync_to_async(lambda: repr(sys.exc_info()[1]))() == "KeyError('in flight')"
    finally:
        SyncToAsync.thread_handler = original  # type: ignore[method-assign]
    assert len(calls) == 2
    assert await sync_to_async(lambda: 6)() == 6
    assert len(calls) == 2


def test_async_single_thread_context_runs_calls_on_one_thread() -> None:
    """As asgiref: one other thread for every call in the block, stopped on exit."""
    var: contextvars.ContextVar[int] = contextvars.ContextVar("n", default=0)
    threads: list[int] = []

    async def step() -> None:
        threads.append(threading.get_ident())
        var.set(var.get() + 1)

    with AsyncSingleThreadContext() as outer:
        async_to_sync(step)()
        with AsyncSingleThreadContext() as inner:
            async_to_sync(step)()
        assert inner.token is None and outer.token is not None
    assert outer.token is None
    assert len(set(threads)) == 1
    assert threads[0] != threading.get_ident()  # as in asgiref: another thread
    assert var.get() == 2
    assert not any(t.name == "asgibridge-single-thread" for t in threading.enumerate())
    assert asgibridge.AsyncSingleThreadContext is AsyncSingleThreadContext


@ASYNCIO_ONLY
async def test_async_single_thread_context_inside_sync_to_async_uses_the_callers_loop(
    anyio_backend: str,
) -> None:
    threads: list[int] = []

    async def where() -> None:
        threads.append(threading.get_ident())

    def inner() -> None:
        with AsyncSingleThreadContext():
            async_to_sync(where)()
            async_to_sync(where)()

    await sync_to_async(inner)()
    assert threads == [threading.get_ident()] * 2


def test_u7_wsgi_greenlet_mode_app_sees_no_loop() -> None:
    """A WSGI app run in greenlet mode by WsgiToAsgi is sync code too."""
    from asgibridge import WsgiToAsgi

    seen: list[bool] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(loop_visible())
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    bridge = WsgiToAsgi(app, executor="greenlet")
    scope = make_scope()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg: dict[str, Any]) -> None:
        sent.append(msg)

    asyncio.run(bridge(scope, receive, send))  # type: ignore[arg-type]
    assert seen == [False]
    assert sent[0]["status"] == 200
    assert os.getpid() > 0


def test_async_single_thread_context_thread_sensitive_calls_come_back_to_the_caller() -> None:
    async def coro() -> int:
        return await sync_to_async(threading.get_ident)()

    with AsyncSingleThreadContext():
        assert async_to_sync(coro)() == threading.get_ident()


@ASYNCIO_ONLY
async def test_asgiref_class_state_views(anyio_backend: str) -> None:
    """asgiref's internal class attributes, read by its tests and some APM agents."""
    assert bsync.AsyncToSync.executors.current is None  # type: ignore[attr-defined]
    parent_view = bsync.SyncToAsync.thread_sensitive_context  # type: ignore[attr-defined]
    with ThreadPoolExecutor(1) as pool:
        async with ThreadSensitiveContext() as parent:
            assert parent_view.get() is parent
            await sync_to_async(threading.get_ident)()
            assert parent in bsync.SyncToAsync.context_to_thread_executor  # type: ignore[attr-defined]
            async with ThreadSensitiveContext(executor=pool) as child:
                assert parent_view.get() is child
                assert bsync.AsyncToSync.executors.current is None  # type: ignore[attr-defined]
            assert child not in bsync.SyncToAsync.context_to_thread_executor  # type: ignore[attr-defined]
        assert parent not in bsync.SyncToAsync.context_to_thread_executor  # type: ignore[attr-defined]

    def inside() -> object:
        return bsync.AsyncToSync.executors.current  # type: ignore[attr-defined]

    async def coro() -> object:
        return await sync_to_async(inside)()

    def outer() -> object:
        return async_to_sync(coro)()

    assert await sync_to_async(outer)() is not None


@ASYNCIO_ONLY
async def test_u10_late_lane_can_be_taken_as_an_executor(anyio_backend: str) -> None:
    """asgiref's test_plain_context_allows_calls_after_exit, through the views."""
    tsc = ThreadSensitiveContext()
    async with tsc:
        in_block = await sync_to_async(threading.get_ident)()
    token = bsync._TSC.set(tsc)
    try:
        late = await sync_to_async(threading.get_ident)()
    finally:
        bsync._TSC.reset(token)
    assert late != in_block
    executor = bsync.SyncToAsync.context_to_thread_executor.pop(tsc)  # type: ignore[attr-defined]
    with executor:
        assert executor.submit(threading.get_ident).result(WAIT) == late
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(threading.get_ident)


# ------------------------------------------------ greenlet mode and the end of a body


def _run_bridge_recording(read: int, length: int = 3) -> list[str]:
    """Drive WsgiToAsgi (greenlet mode) with a server that sends 3 body bytes, then the
    body's end (more_body=False) in a message of its own, as HTTP/2 servers do."""
    from asgibridge import WsgiToAsgi

    def app(environ: Any, start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read(read)
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    events: list[str] = []
    messages = [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": False},
    ]

    async def receive() -> dict[str, Any]:
        if messages:
            events.append("receive")
            return messages.pop(0)
        events.append("receive-wait")
        await asyncio.sleep(WAIT)
        return {"type": "http.disconnect"}

    async def send(msg: dict[str, Any]) -> None:
        events.append(msg["type"] + ("" if msg.get("more_body") else ".final"))

    scope = make_scope(
        http_version="2", method="POST", headers=[(b"content-length", str(length).encode())]
    )
    asyncio.run(asyncio.wait_for(WsgiToAsgi(app, executor="greenlet")(scope, receive, send), WAIT))  # type: ignore[arg-type]
    return events


def test_greenlet_mode_takes_the_body_end_before_the_response_ends() -> None:
    """hypercorn's HTTP/2 fails when a response ends before the client's END_STREAM frame is
    processed (upstream #329); a native app reads to more_body=False, and so does the bridge."""
    events = _run_bridge_recording(read=3)
    assert events.index("receive", 1) < events.index("http.response.body.final"), events


def test_greenlet_mode_does_not_wait_for_a_body_the_app_left_unread() -> None:
    """Bytes still with the server: the client may wait for the response before it sends
    them, so the bridge does not ask for more."""
    events = _run_bridge_recording(read=1, length=6)
    assert events.count("receive") == 1, events
    assert "receive-wait" not in events
