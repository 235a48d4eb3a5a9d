"""Memory: a 1 GiB upload echoed back chunk by chunk through WsgiToAsgi on a real uvicorn.

Run with ``python -m benchmarks.wsgi_memory`` (``--size-mb 256`` for a short run,
``--peers`` to add a2wsgi for comparison).

The server is ``uvicorn --workers 1`` in its own process, serving
``examples.wsgi_hello:echo_thread`` / ``echo_greenlet`` (a raw WSGI app that
reads ``wsgi.input`` 64 KiB at a time and yields each piece back). The client
is a raw socket in this process: one thread sends the body (Content-Length:
1 GiB, generated from one reused 1 MiB buffer, so the client itself holds
nothing), while the main thread reads and decodes the chunked response and
checks its length. Upload and download run at the same time, as a real echo
client must, or both sides would stall on full socket buffers.

Memory is the server process's: its ``VmRSS`` after a warm-up request is the
baseline; the kernel's peak-RSS counter (``VmHWM``) is reset right before the
upload (``/proc/PID/clear_refs``) and read right after. Growth = peak -
baseline, which includes uvicorn's own buffers, so it is an upper bound on
what the bridge holds. Target: 16 MiB or less.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import _harness

ROOT = Path(__file__).resolve().parent.parent

CONTENDERS = {
    "asgibridge thread": "examples.wsgi_hello:echo_thread",
    "asgibridge greenlet": "examples.wsgi_hello:echo_greenlet",
}
PEERS = {"a2wsgi": "benchmarks.wsgi_memory:a2wsgi_echo"}

MIB = 1024 * 1024


def a2wsgi_echo() -> object:  # pragma: no cover - served by uvicorn --factory
    from a2wsgi import WSGIMiddleware

    from examples.wsgi_hello import echo_app

    return WSGIMiddleware(echo_app)  # type: ignore[arg-type]


def _status(pid: int, key: str) -> int:
    """A ``kB`` field of /proc/PID/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not found for pid {pid}")


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("uvicorn did not start")


def echo(port: int, size: int) -> tuple[int, float]:
    """POST ``size`` bytes to / and read the echo; return (bytes echoed, seconds)."""
    block = bytes(range(256)) * 4096  # 1 MiB
    conn = socket.create_connection(("127.0.0.1", port), timeout=60)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = (
        f"POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode()
    failure: list[BaseException] = []

    def upload() -> None:
        try:
            conn.sendall(head)
            left = size
            view = memoryview(block)
            while left:
                n = min(left, len(block))
                conn.sendall(view[:n])
                left -= n
        except BaseException as exc:  # pragma: no cover - reported below
            failure.append(exc)

    start = time.monotonic()
    sender = threading.Thread(target=upload, daemon=True)
    sender.start()
    reader = conn.makefile("rb", buffering=256 * 1024)
    status = reader.readline()
    if not status.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response {status!r}")
    chunked = False
    while (line := reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
            chunked = True
    if not chunked:
        raise RuntimeError("expected a chunked response")
    total = 0
    while True:
        length = int(reader.readline().split(b";")[0], 16)
        if length == 0:
            break
        left = length
        while left:
            piece = reader.read(min(left, 1 << 20))
            if not piece:
                raise RuntimeError("the response ended early")
            left -= len(piece)
        total += length
        reader.readline()
    elapsed = time.monotonic() - start
    sender.join(60)
    reader.close()
    conn.close()
    if failure:
        raise RuntimeError("upload failed") from failure[0]
    return total, elapsed


def measure(app: str, size: int) -> tuple[int, int, int, float]:
    """Return (baseline RSS, peak RSS, bytes echoed, seconds) for one server."""
    port = _harness.free_port()
    args = [sys.executable, "-m", "uvicorn", app, "--port", str(port)]
    args += ["--workers", "1", "--log-level", "warning", "--no-access-log"]
    if app in PEERS.values():
        args.append("--factory")
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        _wait_ready(port, proc)
        echo(port, 4 * MIB)  # warm-up: every code path has run once
        time.sleep(0.2)
        baseline = _status(proc.pid, "VmRSS")
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # reset VmHWM
        total, elapsed = echo(port, size)
        peak = _status(proc.pid, "VmHWM")
        return baseline, peak, total, elapsed
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="upload size in MiB")
    parser.add_argument("--peers", action="store_true", help="also measure a2wsgi")
    args = parser.parse_args()
    size = args.size_mb * MIB
    contenders = dict(CONTENDERS)
    if args.peers:
        contenders.update(PEERS)
    print(f"{args.size_mb} MiB upload echoed chunk by chunk, uvicorn --workers 1")
    print(f"{'contender':<22}{'baseline':>10}{'peak':>10}{'growth':>10}{'MiB/s':>8}  echoed")
    for name, app in contenders.items():
        baseline, peak, total, elapsed = measure(app, size)
        growth = (peak - baseline) / MIB
        ok = "ok" if total == size else f"WRONG ({total} bytes)"
        print(
            f"{name:<22}{baseline / MIB:>9.1f}M{peak / MIB:>9.1f}M{growth:>9.1f}M"
            f"{size / MIB / elapsed:>8.0f}  {ok}"
        )
    print("target: growth <= 16 MiB")


if __name__ == "__main__":
    main()
