"""Shared pieces of the end-to-end benchmarks: free ports, server commands, readiness, wrk."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from tests.support.net import free_port

__all__ = [
    "free_port",
    "gunicorn_gthread_cmd",
    "run_wrk",
    "stop",
    "uvicorn_cmd",
    "wait_ready",
    "wrk",
    "wrk_non2xx",
    "wrk_rps",
    "wrk_socket_errors",
]


def uvicorn_cmd(
    app: str, port: int, *, loop: str = "asyncio", extra: Sequence[str] = ()
) -> list[str]:
    """``python -m uvicorn APP`` on 127.0.0.1:``port``: one worker, warnings only, no access log."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
        "--loop",
        loop,
        *extra,
    ]


def gunicorn_gthread_cmd(
    app: str, bind: str, *, threads: int, extra: Sequence[str] = ()
) -> list[str]:
    """``python -m gunicorn APP --bind BIND``: one gthread worker, warnings only.

    ``bind`` is ``127.0.0.1:PORT``, or ``fd://N`` for a socket the caller passes on.
    """
    return [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        bind,
        "--workers",
        "1",
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        *extra,
    ]


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate ``proc`` and wait for it; kill it if it is still running after ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def wait_ready(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float = 20.0) -> None:
    """Poll ``GET /`` on 127.0.0.1:``port`` until it answers 200; fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    request = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0) as c:
                c.sendall(request)
                if c.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not answer on port {port} within {timeout}s")


def run_wrk(
    port: int,
    seconds: float,
    connections: int,
    *,
    threads: int = 1,
    extra: Sequence[str] = (),
    slack: float = 30.0,
) -> str:
    """Run ``wrk`` against http://127.0.0.1:``port``/; return its report.

    ``extra`` goes before the URL; the run may take ``slack`` seconds more than ``seconds``.
    """
    return subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            *extra,
            f"http://127.0.0.1:{port}/",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + slack,
    ).stdout


def wrk_rps(out: str) -> float:
    """Requests/second from a wrk report."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    return float(rps.group(1))


def wrk_non2xx(out: str) -> int:
    """How many responses a wrk report counts as neither 2xx nor 3xx."""
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return int(non2xx.group(1)) if non2xx else 0


def wrk_socket_errors(out: str) -> dict[str, int]:
    """A wrk report's socket errors: connect, read, write and timeout counts."""
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    counts = map(int, errors.groups()) if errors else (0, 0, 0, 0)
    return dict(zip(("connect", "read", "write", "timeout"), counts, strict=True))


def wrk(port: int, seconds: float, connections: int) -> tuple[float, int, int]:
    """Run ``wrk -t1`` against 127.0.0.1:``port``; return (requests/s, non-2xx, socket errors)."""
    out = run_wrk(port, seconds, connections)
    return wrk_rps(out), wrk_non2xx(out), sum(wrk_socket_errors(out).values())
