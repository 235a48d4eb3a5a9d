"""The servers of the matrix: how to start each one, and a bounded start and stop.

Every server runs as a subprocess in its own process group, bound to
127.0.0.1 on a port picked free just before, serving
``compat_matrix.target:app``. :func:`running` waits (bounded) until it
answers HTTP, and on exit stops the whole process group: SIGTERM, a bounded
wait, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ASGI_SERVERS", "SERVERS", "WSGI_SERVERS", "Server", "ServerProcess", "StartError"]

TARGET = "compat_matrix.target:app"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 8.0


@dataclass(frozen=True)
class Server:
    """One server configuration: a column of the matrix."""

    name: str
    kind: str  # "asgi" (serves WsgiToAsgi) or "wsgi" (serves AsgiToWsgi)
    command: Callable[[str, int], list[str]]  # (python, port) -> argv
    http2: bool = False  # drive it with HTTP/2 prior knowledge (h2c)
    package: str = ""  # distribution whose version is recorded
    # False: the server closes every connection after one response without saying
    # "Connection: close" (uWSGI's --http-socket, made to sit behind a proxy), so
    # the client asks for close itself instead of racing to reuse the connection.
    keepalive: bool = True


def _uvicorn(http: str, loop: str) -> Callable[[str, int], list[str]]:
    def cmd(py: str, port: int) -> list[str]:
        return [
            py, "-m", "uvicorn", TARGET, "--host", "127.0.0.1", "--port", str(port),
            "--http", http, "--loop", loop, "--lifespan", "auto",
            "--log-level", "warning", "--no-access-log", "--timeout-graceful-shutdown", "3",
        ]  # fmt: skip

    return cmd


def _hypercorn(worker: str) -> Callable[[str, int], list[str]]:
    def cmd(py: str, port: int) -> list[str]:
        return [
            py, "-m", "hypercorn", TARGET, "--bind", f"127.0.0.1:{port}",
            "--worker-class", worker, "--log-level", "warning", "--graceful-timeout", "3",
        ]  # fmt: skip

    return cmd


def _granian(py: str, port: int) -> list[str]:
    return [
        py, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log",
        TARGET,
    ]  # fmt: skip


def _daphne(py: str, port: int) -> list[str]:
    return [py, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "1", TARGET]


def _gunicorn(worker: str) -> Callable[[str, int], list[str]]:
    def cmd(py: str, port: int) -> list[str]:
        return [
            py, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--worker-class", worker, "--threads", "4", "--graceful-timeout", "3",
            "--timeout", "30", "--no-control-socket", "--log-level", "warning", TARGET,
        ]  # fmt: skip

    return cmd


def _waitress(py: str, port: int) -> list[str]:
    return [py, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=4", TARGET]


def _runner(name: str) -> Callable[[str, int], list[str]]:
    def cmd(py: str, port: int) -> list[str]:
        return [py, "-m", "compat_matrix.runners", name, str(port)]

    return cmd


def _uwsgi(py: str, port: int) -> list[str]:
    uwsgi = str(Path(py).parent / "uwsgi")
    return [
        uwsgi, "--http-socket", f"127.0.0.1:{port}", "--module", TARGET,
        "--master", "--processes", "1", "--threads", "4", "--die-on-term",
        "--need-app", "--disable-logging",
    ]  # fmt: skip


ASGI_SERVERS = [
    Server("uvicorn-h11", "asgi", _uvicorn("h11", "asyncio"), package="uvicorn"),
    Server("uvicorn-httptools", "asgi", _uvicorn("httptools", "asyncio"), package="httptools"),
    Server("uvicorn-uvloop", "asgi", _uvicorn("httptools", "uvloop"), package="uvloop"),
    Server("hypercorn-asyncio", "asgi", _hypercorn("asyncio"), package="hypercorn"),
    Server("hypercorn-asyncio-h2c", "asgi", _hypercorn("asyncio"), http2=True, package="h2"),
    Server("hypercorn-trio", "asgi", _hypercorn("trio"), package="trio"),
    Server("hypercorn-trio-h2c", "asgi", _hypercorn("trio"), http2=True, package="h2"),
    Server("granian", "asgi", _granian, package="granian"),
    Server("daphne", "asgi", _daphne, package="daphne"),
]
WSGI_SERVERS = [
    Server("gunicorn-sync", "wsgi", _gunicorn("sync"), package="gunicorn"),
    Server("gunicorn-gthread", "wsgi", _gunicorn("gthread"), package="gunicorn"),
    Server("waitress", "wsgi", _waitress, package="waitress"),
    Server("wsgiref", "wsgi", _runner("wsgiref")),
    Server("werkzeug", "wsgi", _runner("werkzeug"), package="werkzeug"),
    Server("uwsgi", "wsgi", _uwsgi, package="pyuwsgi", keepalive=False),
]
SERVERS = {s.name: s for s in ASGI_SERVERS + WSGI_SERVERS}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as conn:
            conn.settimeout(5.0)
            conn.sendall(b"GET /__ready__ HTTP/1.1\r\nHost: compat\r\nConnection: close\r\n\r\n")
            return conn.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``proc`` and its process group: SIGTERM, bounded wait, then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    # Whatever is left of the group (workers of a pre-fork server) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT)


class StartError(RuntimeError):
    """A server did not start answering HTTP in time, or exited first."""


class ServerProcess:
    """One run of a server: :meth:`start` (bounded), :meth:`alive`, :meth:`stop`."""

    def __init__(self, server: Server, python: str, env: dict[str, str], workdir: Path) -> None:
        self.server = server
        self.python = python
        self.env = env
        self.workdir = workdir
        self.log = workdir / f"{server.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        """Start the server and wait until it answers HTTP; return its base URL."""
        port = free_port()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.server.command(self.python, port),
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise StartError(
                    f"{self.server.name} exited with code {self.proc.returncode} at startup"
                )
            if _answers(port):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise StartError(f"{self.server.name} did not answer within {START_TIMEOUT:.0f}s")
            time.sleep(0.1)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        """Alive and answering HTTP (a server may be alive but already shutting down)."""
        return self.alive() and _answers(int(self.url.rsplit(":", 1)[1]))

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def log_tail(self, size: int = 2000) -> str:
        try:
            data = self.log.read_bytes()
        except OSError:
            return ""
        return data[-size:].decode("utf-8", "replace")
