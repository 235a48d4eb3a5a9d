"""The scheduler core's own guarantees: the inbox, the bounded pool, the background loop."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import threading
import time
from queue import Empty
from typing import Any

import pytest

from asgibridge import BackgroundLoop, SchedulerError
from asgibridge._core import Inbox, Job, ThreadPool, run_job_async

WAIT = 10.0


# ------------------------------------------------------------------------- Inbox


def test_inbox_is_fifo_and_get_nowait_raises_empty() -> None:
    inbox = Inbox()
    for i in range(5):
        inbox.put(i)
    assert inbox.qsize() == 5
    assert [inbox.get() for _ in range(5)] == [0, 1, 2, 3, 4]
    assert inbox.empty()
    with pytest.raises(Empty):
        inbox.get_nowait()
    inbox.close()


def test_inbox_get_times_out() -> None:
    inbox = Inbox()
    with pytest.raises(Empty):
        inbox.get(timeout=0.01)
    inbox.close()


def test_inbox_loses_no_wakeup_under_many_producers() -> None:
    """Four producer threads, one consumer: every item arrives, none is stuck behind a sleep."""
    inbox = Inbox()
    per_producer = 2000
    start = threading.Barrier(5, timeout=WAIT)

    def produce(base: int) -> None:
        start.wait()
        for i in range(per_producer):
            inbox.put(base + i)

    producers = [threading.Thread(target=produce, args=(k * per_producer,)) for k in range(4)]
    for t in producers:
        t.start()
    start.wait()
    got = [inbox.get(timeout=WAIT) for _ in range(4 * per_producer)]
    for t in producers:
        t.join(WAIT)
    assert sorted(got) == list(range(4 * per_producer))
    inbox.close()


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
@pytest.mark.parametrize("how", ["get", "sleep"])
def test_inbox_wait_survives_a_signal_on_its_thread(how: str) -> None:
    """A signal that lands on the sleeping consumer's thread does not end its wait.

    CPython's ``os.eventfd_read`` raises InterruptedError instead of retrying
    (PEP 475 misses it), and the kernel may deliver a process-directed signal
    (SIGINT, SIGTERM, a server's SIGCHLD) to any thread: a pool worker or an
    ``async_to_sync`` caller would then fail with EINTR.
    """
    inbox = Inbox()
    got: list[object] = []

    def consumer() -> None:
        try:
            got.append(inbox.get() if how == "get" else inbox.sleep())
        except BaseException as exc:  # the failure this test looks for
            got.append(exc)

    old = signal.signal(signal.SIGUSR1, lambda *_: None)
    try:
        t = threading.Thread(target=consumer)
        t.start()
        deadline = time.monotonic() + WAIT
        while not inbox._sleeping and time.monotonic() < deadline:
            time.sleep(0.001)
        assert inbox._sleeping, "the consumer never went to sleep"
        time.sleep(0.02)  # into the system call
        assert t.ident is not None
        for _ in range(3):
            signal.pthread_kill(t.ident, signal.SIGUSR1)
            time.sleep(0.01)
        assert got == [], f"the wait ended on a signal: {got!r}"
        inbox.put("item")
        t.join(WAIT)
        assert not t.is_alive()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert got == (["item"] if how == "get" else [None])
    inbox.close()


def test_inbox_wake_is_never_lost() -> None:
    inbox = Inbox()
    inbox.wake()  # before the consumer sleeps: the next sleep returns at once
    done = threading.Event()

    def consumer() -> None:
        inbox.sleep()
        done.set()

    t = threading.Thread(target=consumer)
    t.start()
    assert done.wait(WAIT)
    t.join(WAIT)
    inbox.close()


# -------------------------------------------------------------------- ThreadPool


@pytest.mark.parametrize("workers", [1, 2])
def test_pool_never_exceeds_max_workers_and_keeps_fifo_order(workers: int) -> None:
    pool = ThreadPool(workers, name="asgibridge-test")
    order: list[int] = []
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    def work(i: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(WAIT)
        with lock:
            running -= 1
            order.append(i)
        return i

    async def main() -> list[int]:
        jobs = [
            run_job_async(Job(work, (i,), {}, contextvars.copy_context()), pool) for i in range(8)
        ]
        tasks = [asyncio.ensure_future(j) for j in jobs]
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.wait_for(asyncio.gather(*tasks), WAIT)

    try:
        assert asyncio.run(main()) == list(range(8))
        assert 1 <= peak <= workers
        assert pool.size <= workers
        if workers == 1:  # one worker: the backlog is served strictly first come, first served
            assert order == list(range(8))
    finally:
        pool.close()
    assert pool.size == 0


def test_pool_rejects_bad_size_and_work_after_close() -> None:
    with pytest.raises(ValueError, match="positive int"):
        ThreadPool(0)
    pool = ThreadPool(1)
    pool.close()

    async def main() -> None:
        await run_job_async(Job(int, (), {}, contextvars.copy_context()), pool)

    with pytest.raises(SchedulerError, match="is closed"):
        asyncio.run(main())


def test_pool_threads_are_named() -> None:
    pool = ThreadPool(1, name="asgibridge-named")

    async def main() -> str:
        job = Job(lambda: threading.current_thread().name, (), {}, contextvars.copy_context())
        return await run_job_async(job, pool)  # type: ignore[no-any-return]

    try:
        assert asyncio.run(main()).startswith("asgibridge-named-")
    finally:
        pool.close()


# --------------------------------------------------------------- BackgroundLoop


def test_background_loop_closed_is_true_only_after_close() -> None:
    bl = BackgroundLoop(name="asgibridge-test-closed")
    assert bl.closed is False  # not started yet: still open
    assert bl.call(asyncio.sleep, 0) is None
    assert bl.closed is False  # running
    bl.close()
    assert bl.closed is True
    with pytest.raises(SchedulerError):
        bl.call(asyncio.sleep, 0)
    assert bl.closed is True


def test_background_loop_starts_lazily_runs_coroutines_and_closes() -> None:
    before = {t.name for t in threading.enumerate()}
    bl = BackgroundLoop(name="asgibridge-test-loop")
    assert not bl.running
    assert "asgibridge-test-loop" not in {t.name for t in threading.enumerate()} - before

    async def whoami(x: int) -> tuple[int, str]:
        await asyncio.sleep(0)
        return x + 1, threading.current_thread().name

    assert bl.call(whoami, 1) == (2, "asgibridge-test-loop")
    assert bl.running
    seen = threading.Event()
    bl.call_soon(seen.set)
    assert seen.wait(WAIT)

    async def fail() -> None:
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        bl.call(fail)
    thread = bl.thread
    assert thread is not None
    bl.close()
    bl.close()  # idempotent
    assert not thread.is_alive()
    with pytest.raises(SchedulerError, match="closed"):
        bl.call(whoami, 1)


def test_background_loop_call_from_its_own_thread_is_refused() -> None:
    bl = BackgroundLoop(name="asgibridge-test-self")
    errors: list[BaseException] = []
    done = threading.Event()

    async def noop() -> None:
        return None

    def on_loop() -> None:
        try:
            bl.call(noop)
        except SchedulerError as exc:
            errors.append(exc)
        finally:
            done.set()

    try:
        bl.call_soon(on_loop)
        assert done.wait(WAIT)
        assert errors and "await the coroutine directly" in str(errors[0])
    finally:
        bl.close()


def test_background_loop_propagates_context_both_ways() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("bg_var", default="unset")
    bl = BackgroundLoop(name="asgibridge-test-ctx")

    async def read_and_set() -> str:
        before = var.get()
        var.set("from-loop")
        return before

    try:
        var.set("from-caller")
        assert bl.call(read_and_set) == "from-caller"
        assert var.get() == "from-loop"
    finally:
        bl.close()


def test_public_names_have_docstrings() -> None:
    import asgibridge

    missing: list[Any] = [
        name
        for name in asgibridge.__all__
        if not name.startswith("__") and not (getattr(asgibridge, name).__doc__ or "").strip()
    ]
    assert not missing


@pytest.mark.anyio
async def test_backend_fixture_runs_the_loop_it_names(anyio_backend: Any) -> None:
    """The "uvloop" runs of every async test really run on uvloop."""
    if anyio_backend == "trio":
        import trio

        trio.lowlevel.current_trio_token()  # raises RuntimeError outside trio
        return
    module = type(asyncio.get_running_loop()).__module__
    if isinstance(anyio_backend, tuple):
        assert anyio_backend[1] == {"use_uvloop": True}
        assert module.startswith("uvloop")
    else:
        assert module.startswith("asyncio")


# ----------------------------------------------------------------------- Mailbox


def test_mailbox_runs_every_post_once_in_order_under_many_producers() -> None:
    """The lock-free Mailbox: concurrent posts from 8 threads all run, once, each in its order."""
    from asgibridge._core._mailbox import Mailbox

    producers, per = 8, 2000
    seen: list[list[int]] = [[] for _ in range(producers)]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        box = Mailbox(loop.call_soon_threadsafe)
        left = [producers * per]

        def got(who: int, i: int) -> None:
            seen[who].append(i)
            left[0] -= 1
            if not left[0]:
                done.set_result(None)

        def produce(who: int) -> None:
            for i in range(per):
                box.post(got, who, i)

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
        for t in threads:
            t.start()
        await asyncio.wait_for(done, WAIT)
        for t in threads:
            t.join(WAIT)
        await asyncio.sleep(0.01)  # any spare drain finds nothing left to run

    asyncio.run(main())
    assert seen == [list(range(per))] * producers


def test_mailbox_post_after_the_loop_closed_raises_and_a_later_drain_runs_the_rest() -> None:
    """A failed wake-up lowers the flag again: the next post schedules a drain that runs both."""
    from asgibridge._core._mailbox import Mailbox

    calls: list[Any] = []
    ran: list[int] = []
    fail = [True]

    def post(cb: Any) -> None:
        if fail[0]:
            raise RuntimeError("Event loop is closed")
        calls.append(cb)

    box = Mailbox(post)
    with pytest.raises(RuntimeError):
        box.post(ran.append, 1)
    fail[0] = False
    box.post(ran.append, 2)
    assert len(calls) == 1
    calls[0]()
    assert ran == [1, 2]


def _watched_mailbox_run(producers: int, per: int, use_uvloop: bool) -> list[list[int]]:
    """Posts from ``producers`` threads into a Mailbox woken through its eventfd."""
    from asgibridge._core._mailbox import Mailbox

    seen: list[list[int]] = [[] for _ in range(producers)]

    def refuse(cb: Any) -> None:
        raise AssertionError("a watched mailbox posted its drain")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        box = Mailbox(refuse)
        assert box.watch(loop)
        left = [producers * per]

        def got(who: int, i: int) -> None:
            seen[who].append(i)
            left[0] -= 1
            if not left[0]:
                done.set_result(None)

        def produce(who: int) -> None:
            for i in range(per):
                box.post(got, who, i)

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
        for t in threads:
            t.start()
        await asyncio.wait_for(done, WAIT)
        for t in threads:
            t.join(WAIT)
        await asyncio.sleep(0.01)  # any spare drain finds nothing left to run

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
    return seen


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_mailbox_woken_through_its_eventfd_runs_every_post_once_in_order(use_uvloop: bool) -> None:
    """The eventfd wake-up loses no drain: concurrent posts from 8 threads all run, once, in order."""
    producers, per = 8, 2000
    seen = _watched_mailbox_run(producers, per, use_uvloop)
    assert seen == [list(range(per))] * producers


def test_mailbox_woken_through_its_eventfd_raises_once_its_loop_closed() -> None:
    """A post to a closed loop raises RuntimeError, as call_soon_threadsafe does; the flag drops."""
    from asgibridge._core._mailbox import Mailbox

    def refuse(cb: Any) -> None:
        raise AssertionError("a watched mailbox posted its drain")

    box = Mailbox(refuse)

    async def main() -> None:
        assert box.watch(asyncio.get_running_loop())

    asyncio.run(main())
    for _ in range(2):  # the flag went down again after the first failure
        with pytest.raises(RuntimeError, match="closed"):
            box.post(print, "never")


def test_mailbox_drains_in_an_empty_context_and_falls_back_without_add_reader() -> None:
    """The drain sees no request's context variables; a loop that cannot watch fds posts it."""
    from asgibridge._core._mailbox import Mailbox

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    class NoReader(asyncio.SelectorEventLoop):
        def add_reader(self, *args: Any) -> Any:
            raise NotImplementedError

    async def main(expect_watch: bool) -> None:
        loop = asyncio.get_running_loop()
        var.set("request")  # as if a request task made the mailbox
        box = Mailbox(loop.call_soon_threadsafe)
        assert box.watch(loop) is expect_watch
        done = loop.create_future()

        def got() -> None:
            seen.append(var.get())
            done.set_result(None)

        threading.Thread(target=box.post, args=(got,)).start()
        await asyncio.wait_for(done, WAIT)

    asyncio.run(main(True))
    loop = NoReader()
    try:
        loop.run_until_complete(main(False))
    finally:
        loop.close()
    # Watched: the empty context of the registration. Posted: the posting thread's own.
    assert seen == ["unset", "unset"]


def test_mailbox_post_racing_the_drains_eventfd_read_still_wakes_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A producer that posts just as a drain reads the eventfd: no later post is left unwoken.

    The drain reads the eventfd before it lowers the flag. A post that lands
    right then saw the flag raised and wrote nothing, and the drain still runs
    it; the next post sees the flag lowered and writes again. (Read after
    lowering the flag, the read would swallow that post's write with the flag
    left raised, and every later post would wait for a wake-up that never comes.)
    """
    from asgibridge._core import _mailbox
    from asgibridge._core._mailbox import Mailbox

    ran: list[str] = []
    real_read = _mailbox._eventfd_read
    box: list[Mailbox] = []

    def read_with_a_post_first(fd: int) -> int:
        if not ran:
            box[0].post(ran.append, "b")  # a producer, right at the read
        return real_read(fd)

    monkeypatch.setattr(_mailbox, "_eventfd_read", read_with_a_post_first)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        box.append(Mailbox(loop.call_soon_threadsafe))
        assert box[0].watch(loop)
        box[0].post(ran.append, "a")
        for _ in range(100):
            await asyncio.sleep(0.001)
            if len(ran) == 2:
                break
        done = loop.create_future()
        box[0].post(done.set_result, None)
        await asyncio.wait_for(done, 2)

    asyncio.run(main())
    assert ran == ["a", "b"]
