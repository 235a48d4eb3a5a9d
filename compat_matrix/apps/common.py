"""What every scenario app shares: lifespan state, stream bookkeeping, hashing.

All state is per server process. The harness starts one server process per
cell with one worker, so a request that asks "did the stream I abandoned
stop?" reaches the process that ran the stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

__all__ = [
    "SECRET",
    "STARTED",
    "STREAMS",
    "aforever",
    "asse",
    "digest",
    "digest_async",
    "forever",
    "mark_started",
    "sse",
]

SECRET = "compat-matrix-secret-not-for-production"

# Set by the lifespan hook of each app (``mark_started``); read by /lifespan.
STARTED: dict[str, str] = {}

# /stream-forever/<id> records here whether its stream is "open", was
# "closed" early (the client left and the stack closed the iterator), or
# "finished" (it ran to its bound: nobody noticed the client leaving).
STREAMS: dict[str, str] = {}

FOREVER_EVENTS = 1500  # at most this many events ...
FOREVER_SECONDS = 15.0  # ... and this long
FOREVER_DELAY = 0.01


def mark_started() -> None:
    """Lifespan startup hook: what /lifespan reports."""
    STARTED["value"] = "yes"


def digest(read: Callable[[int], bytes]) -> dict[str, Any]:
    """Read a request body to its end through ``read(size)``; its size and SHA-256."""
    h = hashlib.sha256()
    size = 0
    for _ in range(100_000):  # bounded: 100k reads of up to 64 KiB
        chunk = read(65536)
        if not chunk:
            break
        size += len(chunk)
        h.update(chunk)
    return {"size": size, "sha256": h.hexdigest()}


async def digest_async(chunks: AsyncIterator[bytes]) -> dict[str, Any]:
    """Like :func:`digest`, over an async iterator of body chunks."""
    h = hashlib.sha256()
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        h.update(chunk)
    return {"size": size, "sha256": h.hexdigest()}


def sse(n: int) -> Iterator[bytes]:
    """``n`` server-sent events, a little apart."""
    for i in range(n):
        yield f"data: {i}\n\n".encode()
        time.sleep(0.002)


async def asse(n: int) -> AsyncIterator[bytes]:
    for i in range(n):
        yield f"data: {i}\n\n".encode()
        await asyncio.sleep(0.002)


def forever(sid: str) -> Iterator[bytes]:
    """An event stream that only stops when the stack closes it (or at its bound)."""
    STREAMS[sid] = "open"
    deadline = time.monotonic() + FOREVER_SECONDS
    try:
        for i in range(FOREVER_EVENTS):
            if time.monotonic() > deadline:
                break
            yield f"data: {i}\n\n".encode()
            time.sleep(FOREVER_DELAY)
        STREAMS[sid] = "finished"
    finally:
        if STREAMS[sid] == "open":
            STREAMS[sid] = "closed"


async def aforever(sid: str) -> AsyncIterator[bytes]:
    STREAMS[sid] = "open"
    deadline = time.monotonic() + FOREVER_SECONDS
    try:
        for i in range(FOREVER_EVENTS):
            if time.monotonic() > deadline:
                break
            yield f"data: {i}\n\n".encode()
            await asyncio.sleep(FOREVER_DELAY)
        STREAMS[sid] = "finished"
    finally:
        if STREAMS[sid] == "open":
            STREAMS[sid] = "closed"
