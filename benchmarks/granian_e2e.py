"""End to end on granian (and uvicorn, gunicorn): both bridges against native apps and floors.

Run with ``python -m benchmarks.granian_e2e`` (``--quick``: 1 round of 2 s;
``--only granian`` or ``--only uvicorn`` … to run one group).

Raw "hello" apps from ``examples/wsgi_hello.py`` and ``examples/asgi_hello.py``;
every server runs one worker on 127.0.0.1 and ``wrk -t1 -c32`` drives it over
loopback (``--connections``). Each round starts a fresh server per contender,
warms it up for one second and measures; contenders are interleaved, and each
round starts with a different one (so that a noisy neighbour hurts all alike).
The median round is reported with the total count of non-2xx responses and
socket errors, and each contender's ratio to the first row of its group,
measured in the same run:

* ``granian asgi``: ``granian --interface asgi``: a native ASGI app, then
  ``WsgiToAsgi`` in greenlet and thread mode, and a2wsgi's ``WSGIMiddleware``.
  Targets (issue 14): greenlet >= 0.70, thread >= 0.45 of native.
  Two floors: the native app plus one pooled greenlet call (``floor,
  greenlet``: the switch in and out, with the loop hidden, rule U7), and plus
  one bare loop -> thread -> loop round trip through an eventfd and
  ``call_soon_threadsafe`` (``floor, thread``). No bridge of that mode can be
  faster than its floor on the same server.
* ``uvicorn``: the same, on uvicorn (its default HTTP parser, ``--loop
  asyncio``). Targets: greenlet >= 0.84, thread >= 0.71 of native.
* ``granian wsgi``: ``granian --interface wsgi``: a raw WSGI app, then
  ``AsgiToWsgi``, a2wsgi's ``ASGIMiddleware`` and the rule A1 floors: the raw
  WSGI app plus one round trip to a background event loop that creates one
  task (``floor``), and the same with loop wake-ups shared by requests that
  arrive together (``floor, batched``), as asgibridge does. Target:
  ``AsgiToWsgi`` >= 0.50 of raw WSGI, or within 10% of the floor when the
  floor is lower.
* ``gunicorn``: the same on gunicorn, gthread worker with 8 threads.

Needs ``wrk`` on PATH (``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any

from . import _harness

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------- WSGI -> ASGI floors
# Served by the ASGI servers next to the bridge. Each is the native hello plus only
# the hand-off that a mode cannot skip, with no WSGI at all.

_START: dict[str, Any] = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
_BODY: dict[str, Any] = {"type": "http.response.body", "body": b"Hello, World!"}


def _noop() -> None:
    return None


async def greenlet_floor(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Native hello plus one pooled greenlet call (``run_in_greenlet``), as greenlet mode makes."""
    if scope["type"] != "http":
        return
    from asgibridge._core import run_in_greenlet

    await run_in_greenlet(_noop)
    await send(_START)
    await send(_BODY)


class _BareHandOff:
    """One parked thread woken by an eventfd; it answers with ``call_soon_threadsafe``."""

    def __init__(self) -> None:
        self.fd = os.eventfd(0, os.EFD_CLOEXEC)
        self.jobs: deque[asyncio.Future[None]] = deque()
        threading.Thread(target=self._serve, name="floor-hand-off", daemon=True).start()

    def _serve(self) -> None:
        while True:
            os.eventfd_read(self.fd)
            while self.jobs:
                fut = self.jobs.popleft()
                fut.get_loop().call_soon_threadsafe(_resolve, fut)

    async def call(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        self.jobs.append(fut)
        os.eventfd_write(self.fd, 1)
        await fut


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


_hand_off: list[_BareHandOff] = []


async def thread_floor(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Native hello plus one bare loop -> thread -> loop round trip, as thread mode makes."""
    if scope["type"] != "http":
        return
    if not _hand_off:
        _hand_off.append(_BareHandOff())
    await _hand_off[0].call()
    await send(_START)
    await send(_BODY)


# (group, contender) -> (server, target). The first contender of a group is its baseline.
CONTENDERS: dict[tuple[str, str], tuple[str, str]] = {
    ("granian asgi", "native ASGI"): ("granian-asgi", "examples.wsgi_hello:native_asgi"),
    ("granian asgi", "WsgiToAsgi greenlet"): ("granian-asgi", "examples.wsgi_hello:asgi_greenlet"),
    ("granian asgi", "WsgiToAsgi thread"): ("granian-asgi", "examples.wsgi_hello:asgi_thread"),
    ("granian asgi", "a2wsgi WSGIMiddleware"): ("granian-asgi", "examples.wsgi_hello:a2wsgi_app"),
    ("granian asgi", "floor, greenlet"): ("granian-asgi", "benchmarks.granian_e2e:greenlet_floor"),
    ("granian asgi", "floor, thread"): ("granian-asgi", "benchmarks.granian_e2e:thread_floor"),
    ("uvicorn", "native ASGI"): ("uvicorn", "examples.wsgi_hello:native_asgi"),
    ("uvicorn", "WsgiToAsgi greenlet"): ("uvicorn", "examples.wsgi_hello:asgi_greenlet"),
    ("uvicorn", "WsgiToAsgi thread"): ("uvicorn", "examples.wsgi_hello:asgi_thread"),
    ("uvicorn", "floor, greenlet"): ("uvicorn", "benchmarks.granian_e2e:greenlet_floor"),
    ("uvicorn", "floor, thread"): ("uvicorn", "benchmarks.granian_e2e:thread_floor"),
    ("granian wsgi", "raw WSGI"): ("granian-wsgi", "examples.asgi_hello:wsgi_hello"),
    ("granian wsgi", "AsgiToWsgi"): ("granian-wsgi", "examples.asgi_hello:asgibridge_app"),
    ("granian wsgi", "a2wsgi ASGIMiddleware"): ("granian-wsgi", "examples.asgi_hello:a2wsgi_app"),
    ("granian wsgi", "floor"): ("granian-wsgi", "examples.asgi_hello:handoff_floor"),
    ("granian wsgi", "floor, batched"): (
        "granian-wsgi",
        "examples.asgi_hello:handoff_floor_batched",
    ),
    ("gunicorn", "raw WSGI"): ("gunicorn", "examples.asgi_hello:wsgi_hello"),
    ("gunicorn", "AsgiToWsgi"): ("gunicorn", "examples.asgi_hello:asgibridge_app"),
    ("gunicorn", "floor"): ("gunicorn", "examples.asgi_hello:handoff_floor"),
    ("gunicorn", "floor, batched"): ("gunicorn", "examples.asgi_hello:handoff_floor_batched"),
}

TARGETS = {
    ("granian asgi", "WsgiToAsgi greenlet"): 0.70,
    ("granian asgi", "WsgiToAsgi thread"): 0.45,
    ("uvicorn", "WsgiToAsgi greenlet"): 0.84,
    ("uvicorn", "WsgiToAsgi thread"): 0.71,
    ("granian wsgi", "AsgiToWsgi"): 0.50,
    ("gunicorn", "AsgiToWsgi"): 0.50,
}


def command(server: str, target: str, port: int, granian_loop: str) -> list[str]:
    """The command line serving ``target`` with ``server`` on 127.0.0.1:``port``."""
    py = sys.executable
    if server.startswith("granian"):
        iface = server.split("-", 1)[1]
        cmd = [py, "-m", "granian", "--interface", iface, "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--workers", "1", "--no-ws", "--log-level", "warning"]
        if iface == "asgi":
            cmd += ["--loop", granian_loop]
        return [*cmd, target]
    if server == "uvicorn":
        return [
            py, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--log-level", "warning", "--no-access-log", "--loop", "asyncio",
        ]  # fmt: skip
    if server == "gunicorn":
        from .asgi_e2e import _NO_CONTROL_SOCKET

        return [
            py, "-m", "gunicorn", target, "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--worker-class", "gthread", "--threads", "8", "--log-level", "warning",
            *_NO_CONTROL_SOCKET,
        ]  # fmt: skip
    raise ValueError(f"unknown server {server!r}")


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants (Linux /proc)."""
    pids, i, total = [pid], 0, 0.0
    while i < len(pids):
        p = pids[i]
        i += 1
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    pids += [int(c) for c in f.read().split()]
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def run_one(
    server: str,
    target: str,
    seconds: float,
    connections: int,
    log: Path,
    granian_loop: str,
    root: Path = ROOT,
) -> tuple[float, float, int]:
    """Start the server, warm up for one second, measure.

    Returns (req/s, server CPU microseconds per request, non-2xx + socket errors).

    ``root`` is the source tree the server imports ``asgibridge`` and ``examples`` from.
    """
    port = _harness.free_port()
    with log.open("ab") as err:
        err.write(f"==== {server} {target}\n".encode())
        err.flush()
        proc = subprocess.Popen(
            command(server, target, port, granian_loop),
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
        try:
            _harness.wait_ready(port, proc, server)
            _harness.wrk(port, 1, connections)
            cpu0 = _tree_cpu(proc.pid)
            rps, non2xx, errors = _harness.wrk(port, seconds, connections)
            cpu = (_tree_cpu(proc.pid) - cpu0) / max(rps * seconds, 1.0) * 1e6
            return rps, cpu, non2xx + errors
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--only", action="append", help="only these groups (granian asgi, granian wsgi, ...)"
    )
    parser.add_argument(
        "--granian-loop",
        choices=["auto", "asyncio", "uvloop", "rloop"],
        default="auto",
        help="granian's event loop for the ASGI interface (default: granian's own choice)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another source tree (e.g. a `git worktree` of an older commit): every bridge "
        "contender runs from it too, as '<name> @base', in the same rounds",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    chosen = [
        key
        for key in CONTENDERS
        if not args.only or any(key[0].startswith(g) or key[0] == g for g in args.only)
    ]
    roots = dict.fromkeys(chosen, ROOT)
    if args.baseline is not None:
        for key in list(chosen):
            if "To" in key[1]:  # WsgiToAsgi / AsgiToWsgi
                base_key = (key[0], key[1] + " @base")
                CONTENDERS[base_key] = CONTENDERS[key]
                roots[base_key] = args.baseline.resolve()
                chosen.insert(chosen.index(key) + 1, base_key)
    rps: dict[tuple[str, str], list[float]] = {key: [] for key in chosen}
    cpu: dict[tuple[str, str], list[float]] = {key: [] for key in chosen}
    bad = dict.fromkeys(chosen, 0)
    log = Path(tempfile.gettempdir()) / "asgibridge-granian-e2e.log"
    log.write_bytes(b"")
    load0 = os.getloadavg()[0]
    for r in range(rounds):
        order = chosen[r % len(chosen) :] + chosen[: r % len(chosen)]
        for key in order:
            server, target = CONTENDERS[key]
            value, used, failed = run_one(
                server, target, seconds, args.connections, log, args.granian_loop, roots[key]
            )
            rps[key].append(value)
            cpu[key].append(used)
            bad[key] += failed
            print(
                f"  round {r + 1}: {key[0]:<13} {key[1]:<28} {value:>9.0f} req/s "
                f"{used:>6.1f} us CPU/req",
                flush=True,
            )
    load1 = os.getloadavg()[0]
    med = {key: statistics.median(v) for key, v in rps.items()}
    print(
        f"\none worker per server, wrk -t1 -c{args.connections} -d{seconds:g}s, "
        f"{rounds} round(s), median; granian --loop {args.granian_loop}; "
        f"load average {load0:.1f} at start, {load1:.1f} at end (2 cores)"
    )
    print(
        "| server | contender | req/s | of the group's first row | target "
        "| server CPU us/req | bad |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    base: dict[str, float] = {}
    for key in chosen:
        group, name = key
        base.setdefault(group, med[key])
        target = TARGETS.get(key)
        shown = f">= {target:.2f}" if target else ""
        print(
            f"| {group} | {name} | {med[key]:,.0f} | {med[key] / base[group]:.2f} | "
            f"{shown} | {statistics.median(cpu[key]):.1f} | {bad[key]} |"
        )
    for group in ("granian asgi", "uvicorn"):
        for mode in ("greenlet", "thread"):
            ours, floor = med.get((group, f"WsgiToAsgi {mode}")), med.get((group, f"floor, {mode}"))
            if ours and floor:
                print(f"{group}: WsgiToAsgi {mode} / its floor = {ours / floor:.2f}")
    for group in ("granian wsgi", "gunicorn"):
        ours, floor = med.get((group, "AsgiToWsgi")), med.get((group, "floor"))
        batched = med.get((group, "floor, batched"))
        if ours and floor:
            line = f"{group}: AsgiToWsgi / floor = {ours / floor:.2f}"
            if batched:
                line += f", / batched floor = {ours / batched:.2f}"
            print(line)
    print(f"server logs: {log}")


if __name__ == "__main__":
    main()
