"""sync_to_async / async_to_sync: asgibridge against asgiref and asyncio.to_thread, in one run.

Run with ``python -m benchmarks.sync`` (add ``--quick`` for a short run).
Each case is timed in several rounds, interleaving the contenders so that a
noisy neighbour hurts them alike; the median round is reported in
microseconds per call, with the ratio asgiref / asgibridge (higher is better
for asgibridge).

The thread cases also time a "bare hand-off": the event loop hands a call to
a parked thread through an eventfd and gets the result back through
``call_soon_threadsafe``, with nothing else. No library can go below it, and
it moves with the host (17 us on a quiet day here, over 100 us on a busy
one), so for those cases the table also prints each contender's overhead
above it, which is what stays comparable across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import asgiref.sync as ar

import asgibridge.sync as ab


def f() -> int:
    return 1


async def coro() -> int:
    return 1


def time_async(make: Callable[[], Callable[[], Awaitable[Any]]], n: int) -> float:
    async def main() -> float:
        call = make()
        for _ in range(min(n // 10, 200)):
            await call()
        t0 = time.perf_counter()
        for _ in range(n):
            await call()
        return (time.perf_counter() - t0) / n * 1e6

    return asyncio.run(main())


def time_in_thread(make: Callable[[], Callable[[], Any]], n: int) -> float:
    out: list[float] = []

    def body() -> None:
        call = make()
        for _ in range(min(n // 10, 50)):
            call()
        t0 = time.perf_counter()
        for _ in range(n):
            call()
        out.append((time.perf_counter() - t0) / n * 1e6)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return out[0]


def _ts_context(mod: Any) -> Callable[[], Callable[[], Awaitable[Any]]]:
    def make() -> Callable[[], Awaitable[Any]]:
        fn = mod.sync_to_async(f)

        async def call() -> Any:
            async with mod.ThreadSensitiveContext():
                return await fn()

        return call

    return make


def _a2s_in_s2a(mod: Any) -> Callable[[], Callable[[], Awaitable[Any]]]:
    def make() -> Callable[[], Awaitable[Any]]:
        a2s = mod.async_to_sync(coro)
        return mod.sync_to_async(a2s, thread_sensitive=False)  # type: ignore[no-any-return]

    return make


def _greenlet_round_trip() -> Callable[[], Awaitable[Any]]:
    # One greenlet-mode call that does 100 await-from-sync round trips;
    # reported per round trip by dividing by 100 in the caller.
    a2s = ab.async_to_sync(coro)

    def hundred() -> None:
        for _ in range(100):
            a2s()

    return ab.sync_to_async(hundred, executor="greenlet")


def _greenlet_floor(hide_loop: bool) -> Callable[[], Callable[[], Awaitable[Any]]]:
    """The greenlet floor: a bare greenlet that makes 100 await trips to its driver.

    No pool, no context handling, no checks: one switch out, ``await coro()``, one
    switch in. With ``hide_loop`` the driver also hides the running loop around each
    switch in, as rule U7 requires (two ``asyncio._set_running_loop`` calls per trip).
    """
    from greenlet import getcurrent, greenlet

    set_loop = asyncio._set_running_loop

    def make() -> Callable[[], Awaitable[Any]]:
        async def call() -> None:
            driver = getcurrent()
            loop = asyncio.get_running_loop()

            def body() -> None:
                for _ in range(100):
                    driver.switch(coro)

            g = greenlet(body)
            if hide_loop:
                set_loop(None)
            msg = g.switch()
            if hide_loop:
                set_loop(loop)
            while not g.dead:
                await msg()
                if hide_loop:
                    set_loop(None)
                msg = g.switch()
                if hide_loop:
                    set_loop(loop)

        return call

    return make


class _BareHandOff:
    """The floor: one parked thread, woken by an eventfd, answering via call_soon_threadsafe."""

    def __init__(self) -> None:
        self.fd = os.eventfd(0, os.EFD_CLOEXEC)
        self.jobs: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[int]]] = deque()
        threading.Thread(target=self._serve, name="bench-bare-hand-off", daemon=True).start()

    def _serve(self) -> None:
        while True:
            os.eventfd_read(self.fd)
            while self.jobs:
                loop, fut = self.jobs.popleft()
                loop.call_soon_threadsafe(fut.set_result, f())

    async def call(self) -> int:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        self.jobs.append((loop, fut))
        os.eventfd_write(self.fd, 1)
        return await fut


_bare: list[_BareHandOff] = []


def _bare_hand_off() -> Callable[[], Awaitable[Any]]:
    if not _bare:
        _bare.append(_BareHandOff())  # one thread for the whole run, parked between calls
    return _bare[0].call


_FLOOR = "bare hand-off"
_FLOOR_CONTENDER: dict[str, Any] = (
    {_FLOOR: ("async", _bare_hand_off)} if hasattr(os, "eventfd") else {}
)

CASES: list[tuple[str, dict[str, Any], int]] = [
    (
        "sync_to_async thread_sensitive=True",
        {
            "asgibridge": ("async", lambda: ab.sync_to_async(f)),
            "asgiref": ("async", lambda: ar.sync_to_async(f)),
            "asyncio.to_thread": ("async", lambda: lambda: asyncio.to_thread(f)),
            **_FLOOR_CONTENDER,
        },
        3000,
    ),
    (
        "sync_to_async thread_sensitive=False",
        {
            "asgibridge": ("async", lambda: ab.sync_to_async(f, thread_sensitive=False)),
            "asgiref": ("async", lambda: ar.sync_to_async(f, thread_sensitive=False)),
            "asyncio.to_thread": ("async", lambda: lambda: asyncio.to_thread(f)),
            **_FLOOR_CONTENDER,
        },
        3000,
    ),
    (
        "new ThreadSensitiveContext per call",
        {
            "asgibridge": ("async", _ts_context(ab)),
            "asgiref": ("async", _ts_context(ar)),
            **_FLOOR_CONTENDER,
        },
        1500,
    ),
    (
        "async_to_sync from a plain thread",
        {
            "asgibridge": ("thread", lambda: ab.async_to_sync(coro)),
            "asgiref": ("thread", lambda: ar.async_to_sync(coro)),
        },
        1500,
    ),
    (
        "async_to_sync inside sync_to_async",
        {
            "asgibridge": ("async", _a2s_in_s2a(ab)),
            "asgiref": ("async", _a2s_in_s2a(ar)),
        },
        1500,
    ),
    (
        "greenlet mode: whole sync_to_async call",
        {"asgibridge": ("async", lambda: ab.sync_to_async(f, executor="greenlet"))},
        30000,
    ),
    (
        "greenlet mode: await-from-sync round trip",
        {
            "asgibridge": ("async/100", _greenlet_round_trip),
            "floor, loop hidden (U7)": ("async/100", _greenlet_floor(True)),
            "floor, loop visible": ("async/100", _greenlet_floor(False)),
        },
        1000,
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    scale = 0.3 if args.quick else 1.0
    print(f"{'case':44} {'contender':18} {'us/call':>9} {'asgiref/ours':>13} {'above floor':>12}")
    for name, contenders, n in CASES:
        n = max(50, int(n * scale))
        samples: dict[str, list[float]] = {c: [] for c in contenders}
        for _ in range(rounds):
            for contender, (kind, make) in contenders.items():
                if kind == "thread":
                    samples[contender].append(time_in_thread(make, n))
                elif kind == "async/100":
                    samples[contender].append(time_async(make, n) / 100)
                else:
                    samples[contender].append(time_async(make, n))
        medians = {c: statistics.median(v) for c, v in samples.items()}
        ours = medians["asgibridge"]
        floor = medians.get(_FLOOR)
        for contender, value in medians.items():
            ratio = ""
            if contender == "asgiref":
                ratio = f"{value / ours:12.1f}x"
            above = ""
            if floor is not None and contender != _FLOOR:
                above = f"{value - floor:+11.1f}"
            print(f"{name:44} {contender:18} {value:9.2f} {ratio:>13} {above:>12}")
        print()
    ab.shutdown()


if __name__ == "__main__":
    main()
