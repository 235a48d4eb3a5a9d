"""Run an ASGI app on a real server (uvicorn or hypercorn) in a background thread.

``serve(app, "uvicorn")`` is a context manager that binds 127.0.0.1 on a
free port, starts the server in a daemon thread, waits until it accepts
requests, yields the base URL (``http://127.0.0.1:PORT``), and shuts the
server down on exit. Every wait is bounded in time.

Servers: ``"uvicorn"`` (the stdlib asyncio loop), ``"uvicorn-uvloop"`` (uvloop, what
``pip install uvicorn[standard]`` runs in production), ``"hypercorn"`` (asyncio) and
``"hypercorn-trio"`` (hypercorn's trio worker). ``serve(..., http="httptools")`` picks
uvicorn's HTTP/1.1 implementation (``"h11"`` by default).

``uvicorn_process(app, chdir=..., http=...)`` runs uvicorn as a subprocess instead, on a
socket made here and passed with ``--fd``, for apps that need a process of their own (a
configured Django). Its output goes to a file that the yielded ``Process.log()`` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .wsgi_servers import server_process

__all__ = ["SERVERS", "Process", "serve", "uvicorn_process"]

SERVERS = ("uvicorn", "uvicorn-uvloop", "hypercorn", "hypercorn-trio")

STARTUP_TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 15.0


def _listening_socket() -> socket.socket:
    # proto must be IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on
    # accepted sockets whose proto says TCP, and without it Nagle's algorithm
    # meets delayed ACKs and every keep-alive response waits 40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _wait_accepting(port: int, thread: threading.Thread, failure: list[BaseException]) -> None:
    """Wait until an HTTP request on ``port`` gets any answer."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if failure:
            raise RuntimeError("the server failed to start") from failure[0]
        if not thread.is_alive():
            raise RuntimeError("the server thread exited during startup")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
                conn.sendall(b"GET /__ready__ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if conn.recv(16):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"the server did not answer within {STARTUP_TIMEOUT}s")


@contextlib.contextmanager
def serve(
    app: Any, server: str = "uvicorn", *, lifespan: bool = True, http: str = "h11"
) -> Iterator[str]:
    """Serve ``app`` on ``server`` at 127.0.0.1:<free port>; yield the base URL.

    ``http`` is uvicorn's HTTP/1.1 implementation, ``"h11"`` or ``"httptools"``.
    """
    if server not in SERVERS:
        raise ValueError(f"server must be one of {SERVERS}, got {server!r}")
    sock = _listening_socket()
    port = sock.getsockname()[1]
    failure: list[BaseException] = []
    stop: Callable[[], None]

    if server in ("uvicorn", "uvicorn-uvloop"):
        import uvicorn

        config = uvicorn.Config(
            app,
            # Explicit, so that the uvloop run is one and the asyncio run is the other
            # ("auto" would pick uvloop whenever it is installed).
            loop="uvloop" if server == "uvicorn-uvloop" else "asyncio",
            log_level="warning",
            lifespan="on" if lifespan else "off",
            http=http,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        uv = uvicorn.Server(config)

        def run() -> None:
            try:
                uv.run(sockets=[sock])
            except BaseException as exc:  # pragma: no cover - reported to the caller
                failure.append(exc)

        def stop() -> None:
            uv.should_exit = True

    else:
        from hypercorn.config import Config

        hconfig = Config()
        fd = os.dup(sock.fileno())  # hypercorn owns (and closes) its own descriptor
        hconfig.bind = [f"fd://{fd}"]
        hconfig.loglevel = "WARNING"
        hconfig.accesslog = None
        hconfig.graceful_timeout = 5
        if not lifespan:
            pass  # hypercorn always tries lifespan; apps here support it
        trigger: dict[str, Any] = {}

        if server == "hypercorn":
            from hypercorn.asyncio import serve as hserve

            async def main_asyncio() -> None:
                event = asyncio.Event()
                loop = asyncio.get_running_loop()
                trigger["stop"] = lambda: loop.call_soon_threadsafe(event.set)
                await hserve(app, hconfig, shutdown_trigger=event.wait, mode="asgi")

            def run() -> None:
                try:
                    asyncio.run(main_asyncio())
                except BaseException as exc:  # pragma: no cover
                    failure.append(exc)

        else:
            import trio
            from hypercorn.trio import serve as tserve

            async def main_trio() -> None:
                event = trio.Event()
                token = trio.lowlevel.current_trio_token()
                trigger["stop"] = lambda: token.run_sync_soon(event.set)
                await tserve(app, hconfig, shutdown_trigger=event.wait, mode="asgi")

            def run() -> None:
                try:
                    trio.run(main_trio)
                except BaseException as exc:  # pragma: no cover
                    failure.append(exc)

        def stop() -> None:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while "stop" not in trigger and time.monotonic() < deadline:
                time.sleep(0.01)
            with contextlib.suppress(RuntimeError):  # the loop already ended
                trigger["stop"]()

    thread = threading.Thread(target=run, name=f"test-{server}", daemon=True)
    thread.start()
    try:
        _wait_accepting(port, thread, failure)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop()
        thread.join(SHUTDOWN_TIMEOUT)
        sock.close()
        if thread.is_alive():  # pragma: no cover - diagnostics
            raise RuntimeError(f"{server} did not shut down within {SHUTDOWN_TIMEOUT}s")
        if failure:  # pragma: no cover
            raise RuntimeError(f"{server} failed") from failure[0]


class Process:
    """A server subprocess: its base URL, its process and its output so far."""

    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.proc = proc
        self._log = log

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self._log.read_text(errors="replace")


@contextlib.contextmanager
def uvicorn_process(
    app: str,
    *,
    chdir: str | Path,
    http: str = "h11",
    env: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> Iterator[Process]:
    """Run ``python -m uvicorn APP`` (imported from ``chdir``) on a socket passed by fd."""
    sock = _listening_socket()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--fd",
        str(sock.fileno()),
        "--http",
        http,
        "--loop",
        "asyncio",
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "5",
        "--app-dir",
        str(chdir),
        *extra,
        app,
    ]
    port = sock.getsockname()[1]
    with server_process(
        "uvicorn",
        cmd,
        sock,
        env=env,
        cwd=chdir,
        start_timeout=STARTUP_TIMEOUT,
        stop_timeout=SHUTDOWN_TIMEOUT,
    ) as (proc, log):
        yield Process(f"http://127.0.0.1:{port}", proc, log)
