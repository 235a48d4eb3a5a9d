"""Legacy threaded code sharing one ``httpx.AsyncClient`` through asgibridge's shared loop.

An ``httpx.AsyncClient`` (like any connection pool) belongs to the event loop it
first ran on. ``async_to_sync`` gives every thread its own loop, so one client
shared by several threads fails with "... bound to a different event loop".
:func:`asgibridge.run_shared` runs every call on one background loop instead::

    python -m examples.shared_client http://127.0.0.1:8000/

fetches the URL 8 x 50 times from 8 threads through one client and prints the
status counts.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from asgibridge import run_shared

_client: httpx.AsyncClient | None = None
_lock = threading.Lock()


async def _make_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_connections=8))


def client() -> httpx.AsyncClient:
    """The process's one client, created on the shared loop on first use."""
    global _client
    with _lock:
        if _client is None:
            _client = run_shared(_make_client)
        return _client


def fetch_status(url: str) -> int:
    """Plain sync code (any thread): one GET through the shared client."""
    response = run_shared(client().get(url))
    return response.status_code


def close() -> None:
    """Close the client on the loop it belongs to."""
    global _client
    with _lock:
        if _client is not None:
            run_shared(_client.aclose())
            _client = None


def crawl(url: str, threads: int = 8, calls: int = 50) -> Counter[int]:
    """``threads`` threads each fetch ``url`` ``calls`` times; returns status -> count."""
    with ThreadPoolExecutor(threads) as pool:
        batches = pool.map(lambda _: [fetch_status(url) for _ in range(calls)], range(threads))
        return Counter(status for batch in batches for status in batch)


if __name__ == "__main__":
    try:
        print(dict(crawl(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/")))
    finally:
        close()
