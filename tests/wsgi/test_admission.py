"""Thread mode's admission: how many requests run at once, and when that grows.

``WsgiToAsgi`` starts ``active_workers`` requests at once and queues the
rest; a checker grows the running count, never past ``max_workers``, when
the running requests look blocked: nothing finished for a whole period, or
the process sat idle for two periods in a row while requests waited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

import asgibridge._wsgi._admission as admission_module
from asgibridge._wsgi import Admission
from asgibridge.wsgi import WsgiToAsgi
from tests.support.scopes import make_scope

Environ = dict[str, Any]


class Peak:
    """A WSGI app that waits ``seconds`` in ``time.sleep`` and records how many ran at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.calls = 0

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterator[bytes]:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(self.seconds)
        finally:
            with self.lock:
                self.running -= 1
        start_response("200 OK", [("Content-Length", "2")])
        return iter([b"ok"])


SCOPE = make_scope()


def drive(bridge: WsgiToAsgi, clients: int, requests: int, backend: str) -> float:
    """``requests`` requests from ``clients`` concurrent clients; the seconds it took."""

    async def main() -> float:
        left = [requests]

        async def client() -> None:
            # A lean client (no per-request timeout or event, unlike asgi_call): the test
            # needs the process mostly idle while the app waits, so the driver must be cheap.
            done: list[str] = []

            async def receive() -> dict[str, Any]:
                await anyio.sleep_forever()  # a GET: the bridge never needs it
                raise AssertionError("unreachable")

            async def send(message: dict[str, Any]) -> None:
                done.append(message["type"])

            while left[0] > 0:
                left[0] -= 1
                del done[:]
                await bridge(SCOPE, receive, send)
                assert done == ["http.response.start", "http.response.body"], done

        start = time.monotonic()
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(clients):
                    tg.start_soon(client)
        return time.monotonic() - start

    try:
        return anyio.run(main, backend=backend)
    finally:
        bridge.close()


def test_max_workers_bounds_the_requests_running_at_once(backend: str) -> None:
    """Growth past ``active_workers`` stops at ``max_workers`` (it once went on doubling)."""
    app = Peak(0.05)
    bridge = WsgiToAsgi(app, max_workers=4, active_workers=1)
    drive(bridge, clients=16, requests=16, backend=backend)
    assert app.calls == 16
    assert app.peak == 4


@pytest.mark.parametrize("active_workers", [1, 2])
def test_app_waiting_briefly_on_io_gets_more_threads(backend: str, active_workers: int) -> None:
    """Requests that each wait 1.5 ms still grow the running count.

    Jobs finish in every 2 ms period, so "nothing finished" never fires; the
    process is idle while they wait, and that grows it. Before, such an app
    ran ``active_workers`` (at most twice that) requests at once however many
    clients waited: a Django view with a 1 ms query served 32 clients two or
    four at a time.
    """
    app = Peak(0.0015)
    bridge = WsgiToAsgi(app, max_workers=40, active_workers=active_workers)
    drive(bridge, clients=32, requests=600, backend=backend)
    assert app.calls == 600
    # Before, at most twice active_workers ran at once (measured: 2 and 4). The driver
    # shares the process's CPU, so the peak varies with the host.
    assert app.peak >= 2 * active_workers + 2, app.peak


class Entry:
    """A queue entry as the admission sees it."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref
        self.job = object()
        self.gone = False


class FakeClocks:
    """``monotonic`` and ``process_time`` for the checker: each call moves the wall clock on.

    ``busy``: the process's CPU time runs ahead of the wall clock (else it
    stands still). Every ``process_time`` call also counts a finished job, so that
    "nothing finished for a period" never fires, and records how many jobs
    the checker has started so far.
    """

    def __init__(self, adm: Admission[Any], started: list[object], busy: bool) -> None:
        self.adm = adm
        self.started = started
        self.busy = busy
        self.wall = 0.0
        self.cpu = 0.0
        self.seen: list[int] = []

    def monotonic(self) -> float:
        self.wall += 1.0
        return self.wall

    def process_time(self) -> float:
        self.adm.done += 1
        self.seen.append(len(self.started))
        self.wall += 1.0
        if self.busy:
            self.cpu = 10 * self.wall  # ten CPU seconds per wall second: busy, on any count
        if len(self.seen) >= 12:  # six periods: empty the queue so that the checker stops
            for entry in self.adm.queue:
                entry.gone = True
        return self.cpu


@pytest.fixture
def fake_clocks(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[Admission[Any], list[object], bool], FakeClocks]:
    def install(adm: Admission[Any], started: list[object], busy: bool) -> FakeClocks:
        clocks = FakeClocks(adm, started, busy)
        monkeypatch.setattr(admission_module, "monotonic", clocks.monotonic)
        monkeypatch.setattr(admission_module, "process_time", clocks.process_time)
        monkeypatch.setattr(Admission, "GROW_DELAY", 0)
        monkeypatch.setattr(Admission, "LOOK_MIN", float("inf"))  # admit() never looks
        return clocks

    return install


def run_checker(adm: Admission[Any], queued: int, backend: str) -> None:
    """Admit ``1 + queued`` entries (the rest queue and start a checker); run until it ends."""
    from asgibridge._core import batching_ref, current_loop_ref

    async def main() -> None:
        ref = batching_ref(current_loop_ref())
        for _ in range(1 + queued):
            adm.admit(Entry(ref))  # type: ignore[arg-type]
        with anyio.fail_after(10):
            while adm.checking:
                await anyio.sleep(0.001)

    anyio.run(main, backend=backend)


def test_busy_process_does_not_grow(backend: str, fake_clocks: Any) -> None:
    """Jobs finishing while the process uses its CPU: queued requests keep waiting."""
    started: list[object] = []
    adm: Admission[Any] = Admission(started.append, soft=1, hard=8)
    clocks = fake_clocks(adm, started, busy=True)
    run_checker(adm, queued=6, backend=backend)
    assert len(clocks.seen) >= 12
    assert len(started) == 1  # only the first, admitted at once
    assert adm.active == 1


def test_idle_process_grows_after_two_periods(backend: str, fake_clocks: Any) -> None:
    """Jobs finishing while the process sits idle: the count doubles from the second period."""
    started: list[object] = []
    adm: Admission[Any] = Admission(started.append, soft=1, hard=8)
    clocks = fake_clocks(adm, started, busy=False)
    run_checker(adm, queued=6, backend=backend)
    # process_time is read at the start and the end of each period; what had started by then:
    # the first period alone grows nothing; then 1 -> 2 -> 4 -> 7 (all six queued started).
    assert clocks.seen[:2] == [1, 1]
    assert clocks.seen[2:4] == [1, 1]
    assert clocks.seen[4:6] == [2, 2]
    assert clocks.seen[6:8] == [4, 4]
    assert len(started) == 7
    assert adm.active == 7


def test_request_queued_behind_blocked_ones_starts_at_once(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """admit() starts the queue's head when the process sat idle since its last look.

    Only over a look back of ``LOOK_MIN`` to ``LOOK_MAX``, in FIFO order, and
    never past ``hard``.
    """
    from asgibridge._core import batching_ref, current_loop_ref

    clock = {"wall": 100.0, "cpu": 7.0}
    monkeypatch.setattr(admission_module, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(admission_module, "process_time", lambda: clock["cpu"])
    started: list[object] = []
    adm: Admission[Any] = Admission(started.append, soft=1, hard=3)

    async def main() -> list[Entry]:
        ref = batching_ref(current_loop_ref())
        entries = [Entry(ref) for _ in range(7)]
        adm.admit(entries[0])  # starts: below soft
        adm.admit(entries[1])  # queued; the first look only starts a window
        clock["wall"] += 0.0001
        adm.admit(entries[2])  # queued: 0.1 ms is too short a look back
        clock["wall"] += 0.001
        adm.admit(entries[3])  # idle for 1.1 ms: the head (entries[1]) starts
        assert started == [entries[0].job, entries[1].job]
        clock["wall"] += 0.001
        clock["cpu"] += 0.001
        adm.admit(entries[4])  # busy for 1 ms: queued
        assert len(started) == 2
        clock["wall"] += 0.01
        adm.admit(entries[5])  # idle, but for longer than LOOK_MAX: a new window only
        assert len(started) == 2
        clock["wall"] += 0.001
        adm.admit(entries[6])  # idle for 1 ms: the head (entries[2]) starts; now at hard
        clock["wall"] += 0.001
        adm.admit(Entry(ref))  # idle again, but three run: hard
        return entries

    entries = anyio.run(main, backend=backend)
    assert started == [entries[0].job, entries[1].job, entries[2].job]
    assert adm.active == 3
    assert [e.job for e in adm.queue][:4] == [e.job for e in entries[3:7]]


def test_after_job_hands_the_next_queued_request_to_the_same_worker() -> None:
    """The pool's ``after_job`` counts the end and returns the next live queued job, or None."""
    from asgibridge._core import Job, ThreadPool
    from asgibridge._wsgi import PoolAdmission

    pool = ThreadPool(8)
    adm: PoolAdmission[Any] = PoolAdmission(pool, soft=1, hard=8, max_stalled=0)

    def main() -> None:
        return None

    adm.main = main
    job = Job(main, (), {}, None)
    queued = [Entry(None) for _ in range(3)]
    queued[1].gone = True  # its client left while it waited
    adm.queue.extend(queued)
    adm.active = 2
    with pool.lock:
        assert adm._after_job(job) is queued[0].job
        assert adm._after_job(job) is queued[2].job  # the gone one is skipped
        assert adm._after_job(job) is None  # nothing left: this worker goes idle
    assert (adm.active, adm.done) == (1, 3)
    assert adm._after_job(Job(print, (), {}, None)) is None  # not a request: not counted
    assert adm.done == 3
    pool.close()
