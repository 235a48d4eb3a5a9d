"""Run a WSGI application on a real server bound to 127.0.0.1 port 0, for tests.

Three context managers, each yielding a :class:`Served` with the base URL:

* :func:`waitress_server` and :func:`wsgiref_server` run the server in a
  thread of the test process, so the app object is shared with the test;
* :func:`gunicorn_server` runs gunicorn as a subprocess (gthread by default)
  on a listening socket made here and passed as ``fd://N``, so there is no
  port race; its stdout and stderr go to a file that :meth:`Served.log` reads.

Every wait is bounded in time, and every exit path stops the server and
closes its sockets.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from . import ROOT
from .logs import wait_for

__all__ = [
    "Served",
    "gunicorn_server",
    "server_process",
    "stop_process",
    "waitress_server",
    "wsgiref_server",
]


def _gunicorn_version() -> tuple[int, ...]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("gunicorn")
    except PackageNotFoundError:  # pragma: no cover
        return (0,)
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


START_TIMEOUT = 30.0

# gunicorn 25.1+ opens a control socket at a fixed path in $HOME, which
# concurrent test servers would fight over.
_NO_CONTROL_SOCKET = ["--no-control-socket"] if _gunicorn_version() >= (25, 1) else []
STOP_TIMEOUT = 10.0


class Served:
    """A running server: its base URL, its log so far, and (for gunicorn) its process."""

    def __init__(
        self,
        name: str,
        url: str,
        log: Callable[[], str],
        proc: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self._log = log
        self.proc = proc

    def stop(self) -> int:
        """Stop a subprocess server now (SIGTERM, bounded wait); return its exit code."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} runs in this process; leave the with block to stop it")
        return stop_process(self.proc)

    def log(self) -> str:
        """Everything the server (waitress: its logger) and ``asgibridge`` logged so far."""
        return self._log()

    def __repr__(self) -> str:
        return f"<Served {self.name} {self.url}>"


class _Collector(logging.Handler):
    """Formats every ``asgibridge`` record, with its traceback, into a list."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        with self._guard:
            self.lines.append(text)

    def text(self) -> str:
        with self._guard:
            return "\n".join(self.lines)


@contextmanager
def _collect_logs(*names: str) -> Iterator[_Collector]:
    """Collect the records of the ``asgibridge`` logger (DEBUG and up) and of ``names``."""
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in ("asgibridge", *names)]
    old_levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(collector)
    loggers[0].setLevel(logging.DEBUG)
    try:
        yield collector
    finally:
        for logger, level in zip(loggers, old_levels, strict=True):
            logger.removeHandler(collector)
            logger.setLevel(level)


def _join(thread: threading.Thread, what: str) -> None:
    thread.join(STOP_TIMEOUT)
    if thread.is_alive():  # pragma: no cover - reported, never hangs the suite
        raise RuntimeError(f"{what} did not stop within {STOP_TIMEOUT}s")


@contextmanager
def waitress_server(app: Any, *, threads: int = 8) -> Iterator[Served]:
    """Serve ``app`` with waitress in a background thread."""
    # waitress ships no type information: use it through Any.
    wasyncore: Any = importlib.import_module("waitress.wasyncore")
    create_server: Any = importlib.import_module("waitress.server").create_server

    server: Any = create_server(app, host="127.0.0.1", port=0, threads=threads)
    port = server.effective_port
    thread = threading.Thread(target=server.run, name="waitress-main", daemon=True)
    # waitress logs an exception raised by the app, with its traceback, on "waitress".
    with _collect_logs("waitress") as logs:
        thread.start()
        # waitress counts a worker thread as busy until it first waits for a
        # task; a request that comes before then logs "Task queue depth is 1"
        # on waitress.queue (seen once in CI on a loaded host). Serve only once
        # every worker is idle.
        dispatcher = server.task_dispatcher
        try:
            if not wait_for(lambda: dispatcher.active_count == 0, timeout=STOP_TIMEOUT):
                raise RuntimeError(f"waitress's {threads} worker threads did not start")
            yield Served("waitress", f"http://127.0.0.1:{port}", logs.text)
        finally:
            # Stop the worker threads first: a worker that finishes a response
            # pulls the trigger, and once close_all has closed the trigger's
            # descriptors that write fails with EBADF (seen once at teardown).
            # Then close every socket from inside waitress's own loop; the loop
            # finds its map empty and returns.
            server.task_dispatcher.shutdown(timeout=STOP_TIMEOUT)
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
            _join(thread, "waitress")


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False
    # socketserver listens with a backlog of 5. Fifty clients connecting at once then
    # overflow the accept queue; the kernel drops their handshakes' last ACK and
    # resends its SYN-ACK after 1, 2, 4, 8 s, so on a loaded host a request could
    # wait past the client's 10 s timeout (seen once in CI: test_fifty_concurrent_requests).
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def wsgiref_server(app: Any) -> Iterator[Served]:
    """Serve ``app`` with the standard library's wsgiref server, one thread per request."""
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="wsgiref-main"
    )
    with _collect_logs() as logs:
        thread.start()
        try:
            yield Served("wsgiref", f"http://127.0.0.1:{port}", logs.text)
        finally:
            server.shutdown()
            _join(thread, "wsgiref")
            server.server_close()


def _wait_answering(
    name: str, port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    """Wait until the server answers an HTTP request (any status)."""
    deadline = time.monotonic() + timeout
    request = b"GET /__ready__ HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with code {proc.returncode} before answering:\n"
                + log.read_text(errors="replace")
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5.0) as conn:
                conn.sendall(request)
                if conn.recv(16).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(
        f"{name} did not answer within {timeout}s:\n" + log.read_text(errors="replace")
    )


def stop_process(
    proc: subprocess.Popen[bytes],
    sig: int = signal.SIGTERM,
    *,
    name: str = "gunicorn",
    timeout: float = STOP_TIMEOUT,
) -> int:
    """Signal ``proc`` and wait (bounded) for it to exit; kill it if it does not."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # pragma: no cover - reported by the caller
            proc.kill()
            proc.wait(timeout=timeout)
            raise RuntimeError(f"{name} did not stop within {timeout}s") from None
    return proc.returncode


@contextmanager
def server_process(
    name: str,
    cmd: list[str],
    listener: socket.socket,
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    start_timeout: float = START_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Run the server ``cmd``, which serves on ``listener`` (passed by fd), until it answers.

    Yields (process, log file); the log file holds its stdout and stderr. On exit the
    process is stopped (SIGTERM, bounded wait), ``listener`` closed and the log removed.
    """
    listener.set_inheritable(True)
    port = listener.getsockname()[1]
    fd, logname = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
    log = Path(logname)
    child_env = dict(os.environ)
    child_env["PYTHONUNBUFFERED"] = "1"
    if env:
        child_env.update(env)
    proc = subprocess.Popen(
        cmd,
        pass_fds=(listener.fileno(),),
        stdout=fd,
        stderr=fd,
        stdin=subprocess.DEVNULL,
        env=child_env,
        cwd=None if cwd is None else str(cwd),
    )
    os.close(fd)
    try:
        _wait_answering(name, port, proc, log, start_timeout)
        yield proc, log
    finally:
        try:
            stop_process(proc, name=name, timeout=stop_timeout)
        finally:
            listener.close()
            try:
                log.unlink()
            except OSError:  # pragma: no cover
                pass


@contextmanager
def gunicorn_server(
    app: str,
    *,
    chdir: str | Path,
    workers: int = 1,
    worker_class: str = "gthread",
    threads: int = 8,
    preload: bool = False,
    env: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> Iterator[Served]:
    """Run ``gunicorn APP`` as a subprocess; ``APP`` is imported from ``chdir``.

    The repository root is on the workers' path too, so the app's module may import
    ``tests.support``.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"fd://{listener.fileno()}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--graceful-timeout",
        "5",
        "--timeout",
        "30",
        "--chdir",
        str(chdir),
        # test modules loaded from ``chdir`` import their helpers as tests.support.*
        "--pythonpath",
        str(ROOT),
        *(["--preload"] if preload else []),
        *_NO_CONTROL_SOCKET,
        *extra,
        app,
    ]
    with server_process("gunicorn", cmd, listener, env=env) as (proc, log):
        yield Served(
            "gunicorn", f"http://127.0.0.1:{port}", lambda: log.read_text(errors="replace"), proc
        )
