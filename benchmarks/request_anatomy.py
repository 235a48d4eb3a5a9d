"""What one request costs the event loop, counted on real servers, both directions.

Run with ``python -m benchmarks.request_anatomy`` (``--quick``: fewer requests,
fewer servers; ``--strace``: also count system calls per request).

For every (server, app) pair this starts the real server with one worker on
127.0.0.1, serving an app from this module wrapped in counters, sends
``--requests`` plain ``GET /`` requests one after another over one keep-alive
connection (``c1``: every loop iteration belongs to one request), then drives
it with ``wrk -c32`` for two seconds (``c32``: iterations and wake-ups shared by
concurrent requests), and divides the counters by the number of requests the
app saw. Counted in the server process:

``recv`` / ``send``
    ``receive()`` and ``send()`` calls of one request. For ``WsgiToAsgi`` and
    the native ASGI app: the server's callables. For ``AsgiToWsgi``: the
    bridge's callables, as the wrapped ASGI app calls them.
``iters``
    event loop iterations (``BaseEventLoop._run_once``; asyncio loops only:
    "-" on uvloop). On the WSGI servers: the bridge's own loop.
``soon`` / ``ts``
    ``loop.call_soon`` and ``loop.call_soon_threadsafe`` calls (asyncio only).
    A server written in Rust (granian) resolves its awaitables from its own
    threads through ``call_soon_threadsafe``.
``tasks`` / ``futs``
    tasks created (a counting task factory, any loop) and futures made with
    ``loop.create_future`` (asyncio only; ``asyncio.Future()`` made directly
    is not seen).
``efd``
    ``os.eventfd_write`` calls: asgibridge's thread wake-ups (its inboxes).
``futex`` / ``epoll`` / ``write`` (``--strace``)
    system calls per request over every thread of the server, from
    ``strace -f -c``: thread wake-ups and GIL hand-offs, loop polls (also on
    uvloop), writes (sockets, eventfds, self-pipes).

Two paths are answered by the counting wrapper itself, outside the bridge:
``/__anatomy/reset`` and ``/__anatomy/read``. The counters are plain ints
updated under the GIL; c32 numbers are therefore approximate (+-1%).

Needs ``wrk`` on PATH for the c32 column (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from tests.support.net import free_port as _free_port

from . import _harness

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------
# Server side: counters, installed when a server imports this module.

COUNTS: dict[str, int] = {}
_KEYS = ("req", "recv", "send", "iters", "soon", "ts", "tasks", "futs", "efd")


def _reset() -> None:
    for key in _KEYS:
        COUNTS[key] = 0


_reset()
_loops_seen: set[int] = set()


def _install_patches() -> None:
    """Count loop iterations, call_soon(_threadsafe), futures and eventfd writes (asyncio)."""
    from asyncio import base_events

    cls = base_events.BaseEventLoop
    if getattr(cls, "_anatomy_patched", False):
        return
    run_once = cls._run_once  # type: ignore[attr-defined]
    call_soon = cls.call_soon
    call_soon_threadsafe = cls.call_soon_threadsafe
    create_future = cls.create_future
    counts = COUNTS

    def _run_once(self: Any) -> None:
        counts["iters"] += 1
        run_once(self)

    def _call_soon(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["soon"] += 1
        return call_soon(self, *args, **kwargs)

    def _call_soon_threadsafe(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["ts"] += 1
        return call_soon_threadsafe(self, *args, **kwargs)

    def _create_future(self: Any) -> Any:
        counts["futs"] += 1
        return create_future(self)

    cls._run_once = _run_once  # type: ignore[attr-defined]
    cls.call_soon = _call_soon  # type: ignore[method-assign,assignment]
    cls.call_soon_threadsafe = _call_soon_threadsafe  # type: ignore[method-assign,assignment]
    cls.create_future = _create_future  # type: ignore[method-assign]
    cls._anatomy_patched = True  # type: ignore[attr-defined]

    if hasattr(os, "eventfd_write"):
        eventfd_write = os.eventfd_write

        def _eventfd_write(fd: int, value: int) -> None:
            counts["efd"] += 1
            eventfd_write(fd, value)

        os.eventfd_write = _eventfd_write


def _count_tasks_on(loop: asyncio.AbstractEventLoop) -> None:
    """Install a counting task factory on ``loop`` (once), chained to any existing one."""
    if id(loop) in _loops_seen:
        return
    _loops_seen.add(id(loop))
    previous = loop.get_task_factory()
    counts = COUNTS

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        counts["tasks"] += 1
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)


if os.environ.get("ASGIBRIDGE_ANATOMY") == "1":
    _install_patches()


def _report_body() -> bytes:
    return json.dumps(COUNTS).encode()


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _call_counted(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Call ``app``, counting the request and each of its receive/send calls."""
    counts = COUNTS
    counts["req"] += 1

    async def c_receive() -> Any:
        counts["recv"] += 1
        return await receive()

    async def c_send(message: dict[str, Any]) -> None:
        counts["send"] += 1
        await send(message)

    await app(scope, c_receive, c_send)


def counted_asgi(app: ASGIApp) -> ASGIApp:
    """``app`` behind the counters: the server's receive/send calls are counted."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        _count_tasks_on(asyncio.get_running_loop())
        path = scope["path"]
        if path.startswith("/__anatomy/"):
            if path == "/__anatomy/reset":
                _reset()
            body = _report_body()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await _call_counted(app, scope, receive, send)

    return wrapper


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def counted_wsgi(app: WSGIApp) -> WSGIApp:
    """A WSGI ``app`` behind the reset/read endpoints (requests counted by the app)."""

    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__anatomy/"):
            if path == "/__anatomy/reset":
                _reset()
            body = _report_body()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return wrapper


def counted_inner(app: ASGIApp) -> ASGIApp:
    """An ASGI app served by ``AsgiToWsgi``: count the bridge's receive/send calls."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        _count_tasks_on(asyncio.get_running_loop())
        await _call_counted(app, scope, receive, send)

    return wrapper


def __getattr__(name: str) -> Any:
    """The apps, built on first use (so that only the one a server loads is made).

    ``native``, ``greenlet``, ``thread``, ``a2wsgi``: ASGI apps (WSGI -> ASGI).
    ``wsgi_raw``, ``asgibridge``, ``a2wsgi_asgi``, ``floor``, ``floor_batched``:
    WSGI apps (ASGI -> WSGI).
    """
    from examples import asgi_hello, wsgi_hello

    app: Any
    if name == "native":
        app = counted_asgi(wsgi_hello.native_asgi)
    elif name == "greenlet":
        from asgibridge.wsgi import WsgiToAsgi

        app = counted_asgi(WsgiToAsgi(wsgi_hello.app, executor="greenlet"))
    elif name == "thread":
        from asgibridge.wsgi import WsgiToAsgi

        app = counted_asgi(WsgiToAsgi(wsgi_hello.app))
    elif name == "a2wsgi":
        from a2wsgi import WSGIMiddleware

        app = counted_asgi(WSGIMiddleware(wsgi_hello.app))  # type: ignore[arg-type]
    elif name == "wsgi_raw":
        app = counted_wsgi(_count_wsgi_requests(asgi_hello.wsgi_hello))
    elif name == "asgibridge":
        from asgibridge.asgi import AsgiToWsgi

        app = counted_wsgi(AsgiToWsgi(counted_inner(asgi_hello.hello)))
    elif name == "a2wsgi_asgi":
        from a2wsgi import ASGIMiddleware

        app = counted_wsgi(ASGIMiddleware(counted_inner(asgi_hello.hello)))  # type: ignore[arg-type]
    elif name == "floor":
        app = counted_wsgi(_count_wsgi_requests(asgi_hello.handoff_floor))
    elif name == "floor_batched":
        app = counted_wsgi(_count_wsgi_requests(asgi_hello.handoff_floor_batched))
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = app
    return app


def make(name: str) -> Any:
    """The app called ``name`` (for servers that evaluate their target, like hypercorn)."""
    return __getattr__(name)


def _count_wsgi_requests(app: WSGIApp) -> WSGIApp:
    def wrapper(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        COUNTS["req"] += 1
        return app(environ, start_response)

    return wrapper


# --------------------------------------------------------------------------------------
# Driver side.

ASGI_APPS = ("native", "greenlet", "thread", "a2wsgi")
WSGI_APPS = ("wsgi_raw", "asgibridge", "floor", "floor_batched", "a2wsgi_asgi")


def server_command(server: str, app: str, port: int) -> list[str]:
    """The command line that serves ``benchmarks.request_anatomy:<app>`` with ``server``."""
    target = f"benchmarks.request_anatomy:{app}"
    py = sys.executable
    host, sport = "127.0.0.1", str(port)
    if server.startswith("granian"):
        iface = "wsgi" if app in WSGI_APPS else "asgi"
        loop = server.split("-", 1)[1] if "-" in server else "asyncio"
        cmd = [py, "-m", "granian", "--interface", iface, "--host", host, "--port", sport]
        cmd += ["--workers", "1", "--no-ws", "--log-level", "warning"]
        if iface == "asgi":
            cmd += ["--loop", loop]
        return [*cmd, target]
    if server.startswith("uvicorn"):
        _, http, loop = server.split("-")
        return [
            py, "-m", "uvicorn", target, "--host", host, "--port", sport, "--workers", "1",
            "--http", http, "--loop", loop, "--log-level", "warning", "--no-access-log",
            "--lifespan", "off",
        ]  # fmt: skip
    if server == "hypercorn":
        # hypercorn evaluates the target in the module's namespace: call the factory.
        target = f"benchmarks.request_anatomy:make({app!r})"
        return [py, "-m", "hypercorn", target, "--bind", f"{host}:{sport}", "--workers", "1"]
    if server == "gunicorn":
        return [
            py, "-m", "gunicorn", target, "--bind", f"{host}:{sport}", "--workers", "1",
            "--worker-class", "gthread", "--threads", "8", "--log-level", "warning",
        ]  # fmt: skip
    if server == "waitress":
        return [py, "-m", "waitress", "--host", host, "--port", sport, "--threads", "8", target]
    raise ValueError(f"unknown server {server!r}")


def _request(sock: socket.socket, path: str, buf: bytearray) -> bytes:
    """One keep-alive GET; return the response body (Content-Length framing only)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: anatomy\r\n\r\n".encode())
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response: {head[:60]!r}")
    if chunked:  # enough for a short body: read up to the last chunk
        while b"\r\n0\r\n\r\n" not in rest and not rest.startswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            rest += chunk
        end = 5 if rest.startswith(b"0\r\n\r\n") else rest.index(b"\r\n0\r\n\r\n") + 7
        buf[:] = rest[end:]
        return rest[:end]
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        rest += chunk
    buf[:] = rest[length:]
    return rest[:length]


class _Client:
    """One keep-alive connection, opened again when the server closes it.

    hypercorn closes a connection after 1000 requests (``keep_alive_max_requests``).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = bytearray()

    def get(self, path: str) -> bytes:
        for _ in range(2):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                self.buf = bytearray()
            try:
                return _request(self.sock, path, self.buf)
            except ConnectionError:
                self.close()
        raise ConnectionError(f"the server on port {self.port} keeps closing the connection")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _counts(port: int, path: str) -> dict[str, int]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        return dict(json.loads(_request(s, path, bytearray())))


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited early with code {proc.returncode}")
        try:
            _counts(port, "/__anatomy/read")
            return
        except (OSError, ValueError, RuntimeError):
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer on port {port} within {timeout}s")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    out = [pid]
    i = 0
    while i < len(out):
        p = out[i]
        i += 1
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


_STRACE_CALLS = ("futex", "epoll_wait", "epoll_pwait", "write", "writev", "sendto", "eventfd2")


def _strace_start(pid: int, out: str) -> subprocess.Popen[bytes]:
    cmd = ["strace", "-f", "-c", "-o", out, "-e", "trace=" + ",".join(_STRACE_CALLS)]
    for p in _tree(pid):
        cmd += ["-p", str(p)]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # let strace attach to every thread
    return proc


def _strace_stop(proc: subprocess.Popen[bytes], out: str) -> dict[str, int]:
    proc.send_signal(signal.SIGINT)
    proc.wait(20)
    calls: dict[str, int] = {}
    for line in Path(out).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] in _STRACE_CALLS and parts[3].isdigit():
            calls[parts[-1]] = int(parts[3])
    return calls


def measure(
    server: str, app: str, requests: int, wrk_seconds: float, use_strace: bool
) -> dict[str, dict[str, float]]:
    """Serve ``app`` with ``server``; per-request counters at c1 (and c32 with wrk)."""
    port = _free_port()
    log = Path(tempfile.gettempdir()) / "asgibridge-anatomy.log"
    with log.open("ab") as err:
        err.write(f"==== {server} {app}\n".encode())
        err.flush()
        proc = subprocess.Popen(
            server_command(server, app, port),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "ASGIBRIDGE_ANATOMY": "1"},
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
        try:
            _wait_ready(port, proc)
            result: dict[str, dict[str, float]] = {}
            client = _Client(port)
            try:
                for _ in range(200):  # warm-up
                    client.get("/")
                client.get("/__anatomy/reset")
                strace = None
                trace_out = str(Path(tempfile.gettempdir()) / f"anatomy-strace-{port}.txt")
                if use_strace:
                    strace = _strace_start(proc.pid, trace_out)
                for _ in range(requests):
                    client.get("/")
                counts = json.loads(client.get("/__anatomy/read"))
                sys_calls = _strace_stop(strace, trace_out) if strace is not None else {}
            finally:
                client.close()
            result["c1"] = _per_request(counts, sys_calls)
            if wrk_seconds and shutil.which("wrk"):
                _counts(port, "/__anatomy/reset")
                _harness.run_wrk(port, wrk_seconds, 32)
                result["c32"] = _per_request(_counts(port, "/__anatomy/read"), {})
            return result
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def _per_request(counts: dict[str, int], sys_calls: dict[str, int]) -> dict[str, float]:
    n = max(counts.get("req", 0), 1)
    out = {k: counts.get(k, 0) / n for k in _KEYS if k != "req"}
    out["req"] = counts.get("req", 0)
    if sys_calls:
        out["futex"] = sys_calls.get("futex", 0) / n
        out["epoll"] = (sys_calls.get("epoll_wait", 0) + sys_calls.get("epoll_pwait", 0)) / n
        out["write"] = sum(sys_calls.get(k, 0) for k in ("write", "writev", "sendto")) / n
    return out


ASGI_SERVERS = (
    "granian-asyncio",
    "granian-uvloop",
    "uvicorn-h11-asyncio",
    "uvicorn-httptools-asyncio",
    "uvicorn-h11-uvloop",
    "uvicorn-httptools-uvloop",
    "hypercorn",
)
WSGI_SERVERS = ("granian", "gunicorn", "waitress")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="granian and uvicorn only")
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests (c1)")
    parser.add_argument("--wrk-seconds", type=float, default=2.0, help="0: no c32 column")
    parser.add_argument("--strace", action="store_true", help="count system calls too (c1)")
    parser.add_argument("--server", action="append", help="only these servers")
    parser.add_argument("--app", action="append", help="only these apps")
    args = parser.parse_args()
    pairs: list[tuple[str, str]] = []
    asgi_servers: tuple[str, ...] = ASGI_SERVERS
    if args.quick:
        asgi_servers = ("granian-asyncio", "uvicorn-httptools-asyncio")
    for server in asgi_servers:
        pairs += [(server, app) for app in ASGI_APPS]
    for server in WSGI_SERVERS:
        pairs += [(server, app) for app in WSGI_APPS]
    if args.server:
        pairs = [p for p in pairs if p[0] in args.server]
    if args.app:
        pairs = [p for p in pairs if p[1] in args.app]
    cols = ["recv", "send", "iters", "soon", "ts", "tasks", "futs", "efd"]
    if args.strace:
        cols += ["futex", "epoll", "write"]
    print(f"per request; c1: {args.requests} sequential GETs on one connection", end="")
    print(f"; c32: wrk -t1 -c32 -d{args.wrk_seconds:g}s" if args.wrk_seconds else "")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print(f"| server | app | c | {' | '.join(cols)} |")
    print("|---|---|---|" + "---:|" * len(cols))
    for server, app in pairs:
        try:
            res = measure(server, app, args.requests, args.wrk_seconds, args.strace)
        except Exception as exc:  # report it and go on with the next pair
            print(f"| {server} | {app} | - | failed: {exc} |")
            continue
        for c, row in res.items():
            cells = []
            for col in cols:
                if col not in row:
                    cells.append("")
                elif col in ("iters", "soon", "ts", "futs") and row["iters"] == 0:
                    cells.append("-")  # not an asyncio loop: not counted
                else:
                    cells.append(f"{row[col]:.2f}")
            print(f"| {server} | {app} | {c} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
