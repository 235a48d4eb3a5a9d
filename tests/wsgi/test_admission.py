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
from tests.support.drivers import asgi_call

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


def drive(bridge: WsgiToAsgi, clients: int, requests: int, backend: str) -> float:
    """``requests`` requests from ``clients`` concurrent clients; the seconds it took."""

    async def main() -> float:
        left = [requests]

        async def client() -> None:
            while left[0] > 0:
                left[0] -= 1
                assert (await asgi_call(bridge)).messages[-1]["type"] == "http.response.body"

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
    """Requests that each wait 1 ms still grow the running count.

    Jobs finish in every 2 ms period, so "nothing finished" never fires; the
    process is idle while they wait, and that grows it. Before, such an app
    ran ``active_workers`` (at most twice that) requests at once however many
    clients waited: a Django view with a 1 ms query served 32 clients two or
    four at a time.
    """
    app = Peak(0.001)
    bridge = WsgiToAsgi(app, max_workers=40, active_workers=active_workers)
    drive(bridge, clients=32, requests=600, backend=backend)
    assert app.calls == 600
    assert app.peak >= 8, app.peak


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
