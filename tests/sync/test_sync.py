"""Rules U1-U6 and the deadlock guarantees of asgibridge.sync.

Async tests run on asyncio and trio (the ``anyio_backend`` fixture), except
where a test is about asyncio itself. Concurrency is coordinated with events,
never with sleeps; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import asgiref.sync
import pytest

import asgibridge
from asgibridge import sync as bsync
from asgibridge.errors import DeadlockError, SchedulerError
from asgibridge.sync import (
    AsyncToSync,
    SyncToAsync,
    ThreadSensitiveContext,
    async_to_sync,
    iscoroutinefunction,
    markcoroutinefunction,
    sync_to_async,
)

pytestmark = pytest.mark.anyio

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
WAIT = 10.0  # upper bound for any event wait in this file


#: Every way sync_to_async can run a function.
ALL_MODES = pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="thread_sensitive"),
        pytest.param({"thread_sensitive": False}, id="pool"),
        pytest.param({"executor": "greenlet"}, id="greenlet"),
    ],
)


def thread_name() -> str:
    return threading.current_thread().name


# ----------------------------------------------------------------------------- U1


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        pytest.param(sync_to_async, asgiref.sync.sync_to_async, id="sync_to_async"),
        pytest.param(async_to_sync, asgiref.sync.async_to_sync, id="async_to_sync"),
        pytest.param(SyncToAsync.__init__, asgiref.sync.SyncToAsync.__init__, id="SyncToAsync"),
        pytest.param(AsyncToSync.__init__, asgiref.sync.AsyncToSync.__init__, id="AsyncToSync"),
        pytest.param(
            ThreadSensitiveContext.__init__,
            asgiref.sync.ThreadSensitiveContext.__init__,
            id="ThreadSensitiveContext",
        ),
    ],
)
def test_u1_signatures_match_asgiref(ours: Any, theirs: Any) -> None:
    """Same names, kinds and defaults as the installed asgiref (3.13 adds nothing we lack)."""

    def shape(fn: Any) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    mine, reference = shape(ours), shape(theirs)
    assert mine[: len(reference)] == reference
    # Anything beyond an older asgiref's parameters must be optional keyword-only.
    for _name, kind, default in mine[len(reference) :]:
        assert kind is inspect.Parameter.KEYWORD_ONLY
        assert default is not inspect.Parameter.empty


def test_u1_public_names_reexported() -> None:
    for name in (
        "sync_to_async",
        "async_to_sync",
        "SyncToAsync",
        "AsyncToSync",
        "ThreadSensitiveContext",
        "iscoroutinefunction",
        "markcoroutinefunction",
    ):
        assert getattr(asgibridge, name) is getattr(bsync, name)
        assert name in asgibridge.__all__


def test_u1_all_matches_module() -> None:
    for module in (asgibridge, bsync):
        for name in module.__all__:
            assert hasattr(module, name), name
    public = {n for n in dir(bsync) if not n.startswith("_") and callable(getattr(bsync, n))}
    defined_here = {
        n for n in public if getattr(getattr(bsync, n), "__module__", "") == bsync.__name__
    }
    assert defined_here <= set(bsync.__all__)


async def test_u1_decorator_forms_and_metadata(anyio_backend: str) -> None:
    @sync_to_async
    def plain(x: int) -> int:
        """Doc of plain."""
        return x + 1

    @sync_to_async(thread_sensitive=False)
    def unsafe(x: int) -> int:
        return x * 2

    assert await plain(1) == 2
    assert await unsafe(3) == 6
    assert plain.__name__ == "plain"
    assert plain.__doc__ == "Doc of plain."
    assert plain.__wrapped__(1) == 2  # type: ignore[attr-defined]
    assert iscoroutinefunction(plain)
    assert iscoroutinefunction(unsafe)


def test_u1_async_to_sync_decorator_forms() -> None:
    @async_to_sync
    async def add(a: int, b: int) -> int:
        """Doc of add."""
        return a + b

    @async_to_sync(force_new_loop=True)
    async def mul(a: int, b: int) -> int:
        return a * b

    assert add(1, 2) == 3
    assert mul(2, 3) == 6
    assert add.__name__ == "add"
    assert add.__doc__ == "Doc of add."


async def test_u1_methods(anyio_backend: str) -> None:
    class Box:
        def __init__(self) -> None:
            self.n = 5

        @sync_to_async
        def get(self) -> int:
            return self.n

        @async_to_sync
        async def aget(self) -> int:
            return self.n

    box = Box()
    assert await box.get() == 5
    assert await sync_to_async(box.aget)() == 5


def test_u1_rejects_wrong_arguments() -> None:
    async def coro() -> None:
        return None

    with pytest.raises(TypeError, match="only be applied to sync functions"):
        sync_to_async(coro)
    with pytest.raises(TypeError, match="thread_sensitive is True"):
        sync_to_async(thread_name, executor=ThreadPoolExecutor(1))
    with pytest.raises(TypeError, match="'greenlet' or None"):
        sync_to_async(thread_name, executor="gevent")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"must have a submit\(fn, \*args\) method"):
        sync_to_async(thread_name, thread_sensitive=False, executor=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"must have a submit\(fn, \*args\) method"):
        ThreadSensitiveContext(executor=object())  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="non-async-marked"):
        async_to_sync(thread_name)


def test_u1_markcoroutinefunction() -> None:
    def f() -> None:
        return None

    assert not iscoroutinefunction(f)
    assert markcoroutinefunction(f) is f
    assert iscoroutinefunction(f)


async def test_u1_user_executor(anyio_backend: str) -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="mine") as ex:
        name = await sync_to_async(thread_name, thread_sensitive=False, executor=ex)()
    assert name.startswith("mine")


# ----------------------------------------------------------------------------- U2


def test_u2_outermost_sync_thread_under_async_to_sync() -> None:
    async def outer() -> tuple[str, str]:
        a = await sync_to_async(thread_name)()
        b = await sync_to_async(thread_name)()
        return a, b

    def in_thread(result: list[Any]) -> None:
        result.append(async_to_sync(outer)())

    assert async_to_sync(outer)() == (thread_name(), thread_name())
    result: list[Any] = []
    t = threading.Thread(target=in_thread, args=(result,), name="caller")
    t.start()
    t.join(WAIT)
    assert result == [("caller", "caller")]


async def test_u2_outermost_sync_thread_from_worker(anyio_backend: str) -> None:
    """A sync_to_async worker that calls async_to_sync is the home of nested thread-sensitive calls."""

    async def inner() -> str:
        return await sync_to_async(thread_name)()

    def worker() -> tuple[str, str]:
        return thread_name(), async_to_sync(inner)()

    me, nested = await sync_to_async(worker, thread_sensitive=False)()
    assert me == nested
    assert me.startswith("asgibridge-worker")


async def test_u2_single_thread_without_outer_sync(anyio_backend: str) -> None:
    names = {await sync_to_async(thread_name)() for _ in range(5)}
    assert len(names) == 1
    (name,) = names
    assert name != thread_name()
    assert name.startswith("asgibridge-")


async def test_u2_thread_per_thread_sensitive_context(anyio_backend: str) -> None:
    both_inside = threading.Barrier(2, timeout=WAIT)

    async def request() -> tuple[str, str]:
        async with ThreadSensitiveContext():
            first = await sync_to_async(thread_name)()
            # Both requests hold their lane at once: their threads must differ.
            await sync_to_async(both_inside.wait)()
            second = await sync_to_async(thread_name)()
        return first, second

    results: list[tuple[str, str]] = []

    async def run(i: int) -> None:
        results.append(await request())

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, 0)
        tg.start_soon(run, 1)
    (a1, a2), (b1, b2) = results
    assert a1 == a2 and b1 == b2
    assert a1 != b1
    assert a1.startswith("asgibridge-lane") and b1.startswith("asgibridge-lane")


async def test_u2_nested_context_uses_outermost(anyio_backend: str) -> None:
    async with ThreadSensitiveContext():
        outer = await sync_to_async(thread_name)()
        async with ThreadSensitiveContext():
            inner = await sync_to_async(thread_name)()
    assert outer == inner


async def test_u2_context_with_executor(anyio_backend: str) -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="own") as ex:
        ctx = ThreadSensitiveContext(executor=ex)
        async with ctx:
            name = await sync_to_async(thread_name)()
        assert name.startswith("own")
        with pytest.raises(RuntimeError, match="cannot be entered again"):
            async with ctx:
                pass
        with pytest.raises(TypeError, match="Executor"):
            ThreadSensitiveContext(executor="x")  # type: ignore[arg-type]


async def test_u2_call_after_context_exit_raises(anyio_backend: str) -> None:
    with ThreadPoolExecutor(1) as ex:
        ctx = ThreadSensitiveContext(executor=ex)
        async with ctx:
            captured = contextvars.copy_context()
        errors: list[BaseException] = []

        async def outlived_task() -> None:
            try:
                await sync_to_async(thread_name)()
            except RuntimeError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            captured.run(tg.start_soon, outlived_task)  # a task spawned in the old context
        assert len(errors) == 1
        assert "has exited" in str(errors[0])


# ----------------------------------------------------------------------------- U3


def _set_var(value: str) -> str:
    before = var.get()
    var.set(value)
    return before


@ALL_MODES
async def test_u3_context_flows_both_ways_sync_to_async(
    anyio_backend: str, kwargs: dict[str, Any]
) -> None:
    var.set("outer")
    seen = await sync_to_async(_set_var, **kwargs)("inner")
    assert seen == "outer"
    assert var.get() == "inner"


def test_u3_context_flows_both_ways_async_to_sync() -> None:
    async def coro() -> str:
        before = var.get()
        var.set("from-async")
        return before

    token = var.set("from-sync")
    try:
        assert async_to_sync(coro)() == "from-sync"
        assert var.get() == "from-async"
    finally:
        var.reset(token)


async def test_u3_async_to_sync_in_worker_flows_back(anyio_backend: str) -> None:
    async def coro() -> None:
        var.set("deep")

    def worker() -> str:
        async_to_sync(coro)()
        return var.get()

    assert await sync_to_async(worker, thread_sensitive=False)() == "deep"
    assert var.get() == "deep"


async def test_u3_explicit_context_is_used_and_kept(anyio_backend: str) -> None:
    var.set("caller")
    ctx = contextvars.Context()
    await sync_to_async(_set_var, context=ctx)("private")
    assert var.get() == "caller"
    assert ctx[var] == "private"


# ----------------------------------------------------------------------------- U4


async def test_u4_async_to_sync_on_loop_thread_raises(anyio_backend: str) -> None:
    async def coro() -> None:
        return None

    with pytest.raises(RuntimeError, match="same thread as an async event loop"):
        async_to_sync(coro)()


@pytest.mark.parametrize("thread_sensitive", [True, False], ids=["sensitive", "pool"])
def test_u4_nesting_reuses_outer_loop(thread_sensitive: bool) -> None:
    loops: list[Any] = []

    async def innermost() -> str:
        loops.append(asyncio.get_running_loop())
        return "deep"

    def middle() -> str:
        return async_to_sync(innermost)()

    async def outer() -> str:
        loops.append(asyncio.get_running_loop())
        return await sync_to_async(middle, thread_sensitive=thread_sensitive)()

    assert async_to_sync(outer)() == "deep"
    assert len(loops) == 2
    assert loops[0] is loops[1]


def test_u4_deep_nesting_alternating() -> None:
    depth_seen: list[int] = []

    async def a(n: int) -> int:
        depth_seen.append(n)
        if n == 0:
            return 0
        return await sync_to_async(s)(n - 1) + 1

    def s(n: int) -> int:
        return async_to_sync(a)(n)

    assert async_to_sync(a)(6) == 6
    assert depth_seen == [6, 5, 4, 3, 2, 1, 0]


# ----------------------------------------------------------------------------- U5


class Boom(Exception):
    pass


def _raise_boom() -> None:
    raise Boom("from sync")


@ALL_MODES
async def test_u5_exceptions_propagate_with_traceback(
    anyio_backend: str, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(Boom, match="from sync") as info:
        await sync_to_async(_raise_boom, **kwargs)()
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "_raise_boom" in frames


def test_u5_async_exception_reaches_sync_caller() -> None:
    async def fail() -> None:
        raise Boom("from async")

    with pytest.raises(Boom, match="from async") as info:
        async_to_sync(fail)()
    assert "fail" in [f.name for f in traceback.extract_tb(info.value.__traceback__)]


async def test_u5_cancelled_caller_returns_while_sync_finishes(anyio_backend: str) -> None:
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()

    def blocking() -> None:
        started.set()
        release.wait(WAIT)
        finished.set()

    with anyio.move_on_after(WAIT) as outer_scope:
        with anyio.CancelScope() as scope:

            async def cancel_when_started() -> None:
                await anyio.to_thread.run_sync(started.wait, WAIT)
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_when_started)
                await sync_to_async(blocking, thread_sensitive=False)()
        assert scope.cancelled_caught
    assert not outer_scope.cancelled_caught
    # The caller was released while the sync function is still running in its thread.
    assert not finished.is_set()
    release.set()
    assert await anyio.to_thread.run_sync(finished.wait, WAIT)


async def test_u5_cancellation_reaches_sync_code_blocked_in_async_to_sync(
    anyio_backend: str,
) -> None:
    waiting = threading.Event()
    outcome: list[str] = []
    done = threading.Event()

    async def wait_forever() -> None:
        waiting.set()
        await anyio.sleep(WAIT * 10)

    def sync_side() -> None:
        try:
            async_to_sync(wait_forever)()
        except BaseException as exc:  # the cancellation, as the backend spells it
            outcome.append(type(exc).__name__)
        finally:
            done.set()

    with anyio.CancelScope() as scope:

        async def cancel_when_waiting() -> None:
            await anyio.to_thread.run_sync(waiting.wait, WAIT)
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_when_waiting)
            await sync_to_async(sync_side, thread_sensitive=False)()
    assert scope.cancelled_caught
    assert await anyio.to_thread.run_sync(done.wait, WAIT)
    assert outcome and outcome[0] in {"CancelledError", "Cancelled"}


# ----------------------------------------------------------------------------- U6


async def test_u6_greenlet_round_trip_uses_no_thread(anyio_backend: str) -> None:
    loop_thread = threading.get_ident()

    async def async_part(x: int) -> tuple[int, int]:
        await anyio.sleep(0)
        return x * 2, threading.get_ident()

    def sync_part() -> list[tuple[int, int]]:
        assert threading.get_ident() == loop_thread
        return [async_to_sync(async_part)(i) for i in range(20)]

    threads_before = threading.active_count()
    results = await sync_to_async(sync_part, executor="greenlet")()
    assert [r[0] for r in results] == [i * 2 for i in range(20)]
    assert {r[1] for r in results} == {loop_thread}
    assert threading.active_count() == threads_before


async def test_u6_greenlet_cancellation_runs_finally(anyio_backend: str) -> None:
    cleaned: list[str] = []

    async def forever() -> None:
        await anyio.sleep(WAIT * 10)

    def sync_part() -> None:
        try:
            async_to_sync(forever)()
        finally:
            cleaned.append("finally ran")

    with anyio.move_on_after(0.05) as scope:
        await sync_to_async(sync_part, executor="greenlet")()
    assert scope.cancelled_caught
    assert cleaned == ["finally ran"]


async def test_u6_thread_sensitive_calls_inside_greenlet_stay_on_loop_thread(
    anyio_backend: str,
) -> None:
    loop_thread = thread_name()

    async def coro() -> str:
        return await sync_to_async(thread_name)()

    def sync_part() -> str:
        return async_to_sync(coro)()

    assert await sync_to_async(sync_part, executor="greenlet")() == loop_thread


async def test_u6_thread_sensitive_calls_inside_greenlet_with_context_stay_on_loop_thread(
    anyio_backend: str,
) -> None:
    """With ``context=``, the sync part runs in that context and still calls back here."""
    loop_thread = thread_name()
    ctx = contextvars.copy_context()

    async def coro() -> str:
        return await sync_to_async(thread_name)()

    def sync_part() -> tuple[str, str]:
        var.set("in ctx")
        return async_to_sync(coro)(), var.get()

    result = await sync_to_async(sync_part, executor="greenlet", context=ctx)()
    assert result == (loop_thread, "in ctx")
    assert ctx[var] == "in ctx"
    assert var.get() == "unset"


async def test_u6_greenlet_home_is_set_from_the_first_async_to_sync_to_the_end_of_the_call(
    anyio_backend: str,
) -> None:
    """HOME is set lazily, once per greenlet call (not per await), and the call leaves none
    behind in the caller's context."""
    from asgibridge._core import HOME

    seen: list[object] = []

    async def coro() -> None:
        seen.append(HOME.get())

    def sync_part() -> None:
        seen.append(HOME.get())
        async_to_sync(coro)()
        seen.append(HOME.get())

    await sync_to_async(sync_part, executor="greenlet")()
    from asgibridge._core import GREENLET_HOME

    assert seen == [None, GREENLET_HOME, GREENLET_HOME]
    assert HOME.get() is None


async def test_u6_no_bridge_greenlet_gives_clear_error(anyio_backend: str) -> None:
    from greenlet import greenlet

    async def coro() -> None:
        return None

    # A foreign greenlet on the loop thread is not a bridge greenlet: clear error, no hang.
    g = greenlet(lambda: async_to_sync(coro)())
    with pytest.raises(RuntimeError, match="executor='greenlet'"):
        g.switch()


def test_u6_await_in_greenlet_outside_bridge() -> None:
    from asgibridge._core import await_in_greenlet

    coro = asyncio.sleep(0)
    with pytest.raises(SchedulerError, match="outside a bridge greenlet"):
        await_in_greenlet(coro)
    coro.close()


# ------------------------------------------------------------------ nothing kept alive


class _Payload:
    """Stands for a large argument or result (a request, a query set, a file)."""


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="thread_sensitive"),
        pytest.param({"thread_sensitive": False}, id="pool"),
    ],
)
async def test_idle_threads_keep_no_argument_result_or_error_alive(
    anyio_backend: str, kwargs: dict[str, Any]
) -> None:
    """Once a call has returned, its worker, now idle, holds nothing of it.

    Idle threads live for ``idle_timeout`` (60 s): anything they kept would
    outlive its call by that long, and a kept loop reference keeps a whole
    finished event loop (or trio run) alive.
    """
    import weakref

    def identity(value: _Payload) -> _Payload:
        return value

    def fail(value: _Payload) -> None:
        raise ValueError(value)

    arg = _Payload()
    refs = [weakref.ref(arg)]
    result = await sync_to_async(identity, **kwargs)(arg)
    assert result is arg
    del arg, result
    arg = _Payload()
    refs.append(weakref.ref(arg))
    with pytest.raises(ValueError):
        await sync_to_async(fail, **kwargs)(arg)
    del arg
    with anyio.fail_after(WAIT):
        while any(r() is not None for r in refs):
            await anyio.sleep(0.005)  # the worker drops its locals as it parks


# ------------------------------------------------------------------------ deadlocks


@pytest.mark.timeout(20)
async def test_deadlock_reentering_own_lane_is_detected(anyio_backend: str) -> None:
    """A lane thread that starts its own loop and needs itself raises instead of hanging."""

    async def needs_lane() -> str:
        return await sync_to_async(thread_name)()

    def on_lane() -> None:
        asyncio.run(needs_lane())  # not async_to_sync: the lane cannot serve itself

    with pytest.raises(DeadlockError, match="async_to_sync") as info:
        await sync_to_async(on_lane)()
    assert isinstance(info.value, RuntimeError)


@pytest.mark.timeout(20)
async def test_deadlock_undetectable_wait_is_reported(anyio_backend: str) -> None:
    """A lane blocked on something only a later call on the same lane can do: warn, naming both."""
    warned = threading.Event()
    records: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)
            warned.set()

    handler = Catch(level=logging.WARNING)
    logger = logging.getLogger("asgibridge")
    logger.addHandler(handler)
    gate = threading.Event()
    bsync.set_lane_watchdog(0.2)
    try:
        holding = threading.Event()

        def holder_waiting_for_gate() -> bool:
            holding.set()
            return gate.wait(WAIT)

        def open_gate() -> None:
            gate.set()

        async with ThreadSensitiveContext():
            async with anyio.create_task_group() as tg:
                tg.start_soon(sync_to_async(holder_waiting_for_gate))
                assert await anyio.to_thread.run_sync(holding.wait, WAIT)
                tg.start_soon(sync_to_async(open_gate))
                assert await anyio.to_thread.run_sync(warned.wait, WAIT)
                gate.set()  # break the cycle ourselves so the test ends
    finally:
        bsync.set_lane_watchdog(10.0)
        logger.removeHandler(handler)
    message = records[0].getMessage()
    assert "open_gate" in message
    assert "holder_waiting_for_gate" in message
    assert "asgibridge-lane" in message


def test_lane_watchdog_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="positive number"):
        bsync.set_lane_watchdog(0)
    bsync.set_lane_watchdog(None)
    bsync.set_lane_watchdog(10.0)


# ------------------------------------------------------- import, naming and shutdown


def _run_python(code: str, timeout: float = 30.0) -> str:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def test_import_creates_no_thread_loop_or_greenlet() -> None:
    out = _run_python(
        "import threading, gc, asyncio\n"
        "import asgibridge, asgibridge.sync\n"
        "import greenlet\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert asyncio._get_running_loop() is None\n"
        "loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop)]\n"
        "assert not loops, loops\n"
        "gl = [o for o in gc.get_objects() if isinstance(o, greenlet.greenlet)]\n"
        "assert not gl, gl\n"
        "print('clean')\n"
    )
    assert out.strip() == "clean"


def test_worker_threads_are_named_and_interpreter_exits_promptly() -> None:
    out = _run_python(
        "import asyncio, threading, time\n"
        "from asgibridge.sync import sync_to_async, async_to_sync, ThreadSensitiveContext\n"
        "def busy():\n"
        "    time.sleep(0.01); return threading.current_thread().name\n"
        "async def main():\n"
        "    names = {await sync_to_async(busy)(), await sync_to_async(busy, thread_sensitive=False)()}\n"
        "    async with ThreadSensitiveContext():\n"
        "        names.add(await sync_to_async(busy)())\n"
        "    return names\n"
        "names = asyncio.run(main())\n"
        "assert all(n.startswith('asgibridge-') for n in names), names\n"
        "async def a(): return 1\n"
        "assert async_to_sync(a)() == 1\n"
        "print(len(names))\n",
        timeout=20,
    )
    assert out.strip() == "3"


def test_shutdown_stops_every_thread() -> None:
    out = _run_python(
        "import asyncio, threading\n"
        "from asgibridge.sync import sync_to_async, shutdown, ThreadSensitiveContext\n"
        "async def main():\n"
        "    await sync_to_async(int)()\n"
        "    await sync_to_async(int, thread_sensitive=False)()\n"
        "    async with ThreadSensitiveContext():\n"
        "        await sync_to_async(int)()\n"
        "asyncio.run(main())\n"
        "before = sum(t.name.startswith('asgibridge-') for t in threading.enumerate())\n"
        "shutdown()\n"
        "after = [t.name for t in threading.enumerate() if t.name.startswith('asgibridge-')]\n"
        "assert not after, after\n"
        "asyncio.run(main())  # usable again after shutdown\n"
        "shutdown()\n"
        "print(before)\n"
    )
    assert int(out.strip()) >= 3


def test_thread_loop_is_closed_when_thread_exits() -> None:
    out = _run_python(
        "import gc, threading, warnings\n"
        "warnings.simplefilter('error')\n"
        "from asgibridge.sync import async_to_sync\n"
        "async def a(): return 2\n"
        "res = []\n"
        "t = threading.Thread(target=lambda: res.append(async_to_sync(a)()))\n"
        "t.start(); t.join()\n"
        "gc.collect()\n"
        "import asyncio\n"
        "open_loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed()]\n"
        "assert not open_loops, open_loops\n"
        "print(res[0])\n"
    )
    assert out.strip() == "2"


def test_pending_tasks_are_cancelled_after_async_to_sync() -> None:
    cancelled = threading.Event()

    async def leaves_task_behind() -> str:
        async def orphan() -> None:
            try:
                await asyncio.sleep(WAIT * 10)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        asyncio.get_running_loop().create_task(orphan())
        await asyncio.sleep(0)
        return "done"

    assert async_to_sync(leaves_task_behind)() == "done"
    assert cancelled.is_set()


def test_pending_tasks_are_cancelled_after_every_call_that_leaves_some() -> None:
    """Leftovers are only looked for after a call that created a task: each such call,
    however they were created, and not a call later."""
    cancelled: list[int] = []

    async def orphan(n: int) -> None:
        try:
            await asyncio.sleep(WAIT * 10)
        except asyncio.CancelledError:
            cancelled.append(n)
            raise

    async def clean() -> None:
        await asyncio.sleep(0)

    async def via_ensure_future(n: int) -> None:
        left_behind = asyncio.ensure_future(orphan(n))
        await asyncio.sleep(0)
        assert not left_behind.done()

    async def via_gather(n: int) -> None:
        asyncio.get_running_loop().create_task(orphan(n))
        await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))

    for n in range(3):
        async_to_sync(clean)()
        async_to_sync(via_ensure_future)(2 * n)
        async_to_sync(clean)()
        async_to_sync(via_gather)(2 * n + 1)
        assert cancelled == list(range(2 * n + 2))


def test_sys_exc_info_is_visible_inside_sync_call() -> None:
    def read_exc() -> str:
        return repr(sys.exc_info()[1])

    async def handler() -> str:
        try:
            raise Boom("being handled")
        except Boom:
            return await sync_to_async(read_exc)()

    assert "being handled" in async_to_sync(handler)()


@pytest.mark.parametrize("kwargs", [{}, {"thread_sensitive": False}], ids=["sensitive", "pool"])
async def test_many_concurrent_calls_all_complete(
    anyio_backend: str, kwargs: dict[str, Any]
) -> None:
    results: list[int] = []
    fn = sync_to_async(functools.partial(pow, 2), **kwargs)

    async def one(i: int) -> None:
        results.append(await fn(i))

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(one, i)
    assert sorted(results) == sorted(2**i for i in range(200))


async def test_u6_greenlet_holding_the_loop_is_named(anyio_backend: str) -> None:
    import time

    records: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    def hog_the_loop() -> None:
        time.sleep(0.05)  # blocking outside the bridge: exactly what greenlet mode must not do

    handler = Catch(level=logging.WARNING)
    logging.getLogger("asgibridge").addHandler(handler)
    bsync.set_greenlet_hold_warning(0.01)
    try:
        await sync_to_async(hog_the_loop, executor="greenlet")()
        await sync_to_async(int, executor="greenlet")()  # quick: no warning
    finally:
        bsync.set_greenlet_hold_warning(0.5)
        logging.getLogger("asgibridge").removeHandler(handler)
    assert len(records) == 1
    assert "hog_the_loop" in records[0].getMessage()
    with pytest.raises(ValueError, match="positive number"):
        bsync.set_greenlet_hold_warning(-1)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_fork_child_gets_fresh_threads_and_loops() -> None:
    out = _run_python(
        "import asyncio, os, threading, warnings\n"
        "warnings.simplefilter('ignore', DeprecationWarning)  # fork() with threads alive\n"
        "from asgibridge.sync import sync_to_async, async_to_sync, ThreadSensitiveContext\n"
        "def name(): return threading.current_thread().name\n"
        "async def main():\n"
        "    a = await sync_to_async(name)()\n"
        "    b = await sync_to_async(name, thread_sensitive=False)()\n"
        "    async with ThreadSensitiveContext():\n"
        "        c = await sync_to_async(name)()\n"
        "    return a, b, c\n"
        "async def one(): return 1\n"
        "parent = asyncio.run(main())\n"
        "assert async_to_sync(one)() == 1\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    try:\n"
        "        child = asyncio.run(asyncio.wait_for(main(), 10))\n"
        "        ok = async_to_sync(one)() == 1 and all(n.startswith('asgibridge-') for n in child)\n"
        "        os._exit(0 if ok else 3)\n"
        "    except BaseException:\n"
        "        import traceback; traceback.print_exc()\n"
        "        os._exit(4)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n",
        timeout=30,
    )
    assert out.strip() == "0"
