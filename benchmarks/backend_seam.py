"""The backend seam against anyio, on asyncio: why the per-request hot path does not use anyio.

Run with ``python -m benchmarks.backend_seam`` (add ``--quick`` for a short run).

Two operations every ``WsgiToAsgi`` request makes on the loop side, timed in
microseconds per operation (median of interleaved rounds), each next to its
anyio equivalent and with the ratio anyio / asgibridge:

* **wake-up**: a one-waiter flag is made, set by a loop callback (as a
  worker's post sets it) and waited for: ``anyio.Event`` against the seam's
  ``Signal`` (``LoopRef.signal()``);
* **checkpoint**: yield to the loop once: ``anyio.lowlevel.checkpoint()``
  against ``LoopRef.checkpoint()`` (``asyncio.sleep(0)``).

The floor is the bare asyncio form of each (a future set by ``call_soon``;
``asyncio.sleep(0)``), measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel

from asgibridge._core import current_loop_ref


async def floor_wakeup(n: int) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(n):
        fut = loop.create_future()
        loop.call_soon(fut.set_result, None)
        await fut


async def signal_wakeup(n: int) -> None:
    loop = asyncio.get_running_loop()
    ref = current_loop_ref()
    for _ in range(n):
        s = ref.signal()
        loop.call_soon(s.set)
        await s.wait()


async def anyio_wakeup(n: int) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(n):
        e = anyio.Event()
        loop.call_soon(e.set)
        await e.wait()


async def floor_checkpoint(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def seam_checkpoint(n: int) -> None:
    ref = current_loop_ref()
    for _ in range(n):
        await ref.checkpoint()


async def anyio_checkpoint(n: int) -> None:
    for _ in range(n):
        await anyio.lowlevel.checkpoint()


CASES: dict[str, dict[str, Callable[[int], Awaitable[None]]]] = {
    "wake-up (set by a loop callback, awaited)": {
        "floor": floor_wakeup,
        "asgibridge": signal_wakeup,
        "anyio": anyio_wakeup,
    },
    "checkpoint (yield to the loop once)": {
        "floor": floor_checkpoint,
        "asgibridge": seam_checkpoint,
        "anyio": anyio_checkpoint,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, rounds = (2000, 5) if args.quick else (20000, 15)

    async def run() -> None:
        for title, contenders in CASES.items():
            times: dict[str, list[float]] = {name: [] for name in contenders}
            for fn in contenders.values():
                await fn(n // 10)  # warm-up
            for _ in range(rounds):
                for name, fn in contenders.items():
                    t0 = time.perf_counter()
                    await fn(n)
                    times[name].append((time.perf_counter() - t0) / n * 1e6)
            med = {name: statistics.median(ts) for name, ts in times.items()}
            print(title)
            for name, us in med.items():
                print(f"  {name:<12} {us:7.2f} us")
            print(f"  anyio / asgibridge: {med['anyio'] / med['asgibridge']:.2f}")

    asyncio.run(run())


if __name__ == "__main__":
    main()
