"""Memory: a 1 GiB upload echoed chunk by chunk by an ASGI app through AsgiToWsgi.

Run with ``python -m benchmarks.asgi_memory`` (``--size-mb`` to change the size).

The WSGI app is called directly, as a server thread would call it. The
request body comes from a stream that makes a *new* bytes object for every
read (so a bridge that keeps chunks alive shows up as memory growth), the
ASGI app sends every chunk it receives straight back, and the caller
consumes the response chunk by chunk and drops it.

Measurement: after a warm-up request (loop thread started, code paths
imported), the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``
with ``5``), the upload runs, and the growth reported is the peak
(``VmHWM``) minus the resident size just before the run. Where the reset is
not allowed, a thread samples ``VmRSS`` every millisecond instead. Target:
16 MiB or less.
"""

from __future__ import annotations

import argparse
import io
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgibridge.asgi import AsgiToWsgi

Message = MutableMapping[str, Any]
MIB = 1 << 20


async def echo(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Send each request chunk back as soon as it arrives."""
    if scope["type"] != "http":
        raise RuntimeError("no lifespan here")
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream")],
        }
    )
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise RuntimeError(f"unexpected {message['type']}")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if body or not more:
            await send({"type": "http.response.body", "body": body, "more_body": more})
        if not more:
            return


class Upload(io.RawIOBase):
    """``size`` bytes of request body, a fresh bytes object per read."""

    def __init__(self, size: int) -> None:
        self.left = size
        self._pattern = bytes(range(256)) * 256  # 64 KiB

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.left
        n = min(n, self.left, len(self._pattern))
        self.left -= n
        return self._pattern[:n]  # a slice of bytes is a new object (a copy)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def environ(size: int) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/upload",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/octet-stream",
        "CONTENT_LENGTH": str(size),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": Upload(size),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def transfer(app: Any, size: int) -> int:
    """One upload through ``app``; returns the number of body bytes that came back."""
    got = 0
    result = app(environ(size), lambda status, headers, exc_info=None: None)
    try:
        for chunk in result:
            got += len(chunk)
    finally:
        result.close()
    return got


def main(argv: list[str] | None = None) -> int:
    """Run the upload and print the peak RSS growth."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="upload size in MiB")
    args = parser.parse_args(argv)
    size = args.size_mb * MIB

    bridge = AsgiToWsgi(echo, lifespan="off")
    if transfer(bridge, 4 * MIB) != 4 * MIB:  # warm-up
        raise RuntimeError("warm-up echo lost data")

    sampled = [0]
    stop = threading.Event()
    exact = _reset_peak()
    base = _status_kib("VmRSS")
    if not exact:

        def sample() -> None:
            while not stop.wait(0.001):
                sampled[0] = max(sampled[0], _status_kib("VmRSS"))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    t0 = time.perf_counter()
    got = transfer(bridge, size)
    elapsed = time.perf_counter() - t0
    peak = _status_kib("VmHWM") if exact else sampled[0]
    stop.set()
    bridge.close()

    if got != size:
        print(f"FAILED: sent {size} bytes, got {got} back", file=sys.stderr)
        return 1
    growth_mib = (peak - base) / 1024
    method = "VmHWM after clear_refs" if exact else "sampled VmRSS"
    print(f"echoed {size / MIB:.0f} MiB in {elapsed:.2f}s ({size / MIB / elapsed:.0f} MiB/s)")
    print(f"RSS before: {base / 1024:.1f} MiB; peak during: {peak / 1024:.1f} MiB ({method})")
    print(f"peak RSS growth: {growth_mib:.2f} MiB (target <= 16 MiB)")
    return 0 if growth_mib <= 16 else 1


if __name__ == "__main__":
    sys.exit(main())
