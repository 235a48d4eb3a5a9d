"""End to end on granian (and uvicorn, gunicorn): both bridges against native apps and floors.

Run with ``python -m benchmarks.granian_e2e`` (``--quick``: 5 rounds of 1 s;
``--only "granian asgi"``, ``--only "uvicorn h11"``, … to run some groups;
``--baseline DIR`` to run the bridges from another source tree too).

Raw "hello" apps from ``examples/wsgi_hello.py`` and ``examples/asgi_hello.py``;
every server runs one worker on 127.0.0.1 and ``wrk -t1 -c32`` drives it over
loopback (``--connections``). All the servers of a group run at once (idle
ones cost nothing); each round gives every contender one short ``wrk`` window
(``--seconds``, 2 s by default), starting with a different contender each
round, so that contenders are measured within seconds of each other and a
noisy neighbour hurts all alike. Reported per contender: the median req/s, the
median over rounds of its ratio to the group's first row *in the same round*,
the same ratio to its floor, the server's CPU time per request (the whole
process tree, from /proc), the median over rounds of the floor's CPU per
request over the contender's (the same comparison by cost instead of
throughput: on a shared host it moves less than req/s), and the count of
non-2xx responses and socket errors. Groups:

* ``granian asgi``: ``granian --interface asgi``: a native ASGI app, then
  ``WsgiToAsgi`` in greenlet and thread mode, and a2wsgi's ``WSGIMiddleware``.
  Targets (issue 14): greenlet >= 0.70, thread >= 0.45 of native.
  ``thread, active_workers=2`` is thread mode with the default of before.
  Floors: ``floor, greenlet`` and ``floor, thread`` build the environ, run
  the raw WSGI hello in a pooled greenlet (``run_in_greenlet``) or on one
  parked thread (an eventfd hand-off, back through ``call_soon_threadsafe``)
  and send the two messages, with no checks at all: no bridge of that mode can
  beat them. ``floor, thread, eventfd`` comes back through an eventfd the loop
  watches instead, batched, as thread mode does since issue 14's third pass:
  the thread-mode rows are compared with it. ``native + 1 greenlet call`` and ``native + 1 thread round trip``
  are the native app plus only the hand-off.
* ``uvicorn h11`` and ``uvicorn httptools``: the same, on uvicorn (``--loop
  asyncio``) with each HTTP parser, named: uvicorn's default is httptools when
  it is installed and h11 when not, and the two differ by half the native
  app's cost per request. Targets: greenlet >= 0.84, thread >= 0.71 of
  native; issue 14 took them from ``benchmarks.wsgi_e2e`` runs on h11 (the
  only parser installed then), so they are judged on ``uvicorn h11``.
  ``uvicorn httptools`` is the stricter setting, shown beside it.
* ``granian wsgi``: ``granian --interface wsgi``: a raw WSGI app, then
  ``AsgiToWsgi``, a2wsgi's ``ASGIMiddleware`` and the rule A1 floors: the raw
  WSGI app plus one round trip to a background event loop that creates one
  task (``floor``), and the same with loop wake-ups shared by requests that
  arrive together (``floor, batched``), and the batched floor woken through an
  eventfd the loop watches (``floor, eventfd``), as asgibridge does since
  issue 14's third pass: ``AsgiToWsgi`` is compared with that one. Target:
  ``AsgiToWsgi`` >= 0.50 of raw WSGI, or within 10% of the floor when the
  floor is lower.
* ``gunicorn``: the same on gunicorn, gthread worker with 8 threads.
* ``waitress``: the same on waitress, 8 threads.

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


class _BareWorker(_BareHandOff):
    """:class:`_BareHandOff` whose thread runs a function and posts its result back."""

    def __init__(self) -> None:
        self.calls: deque[tuple[asyncio.Future[Any], Any]] = deque()
        super().__init__()

    def _serve(self) -> None:
        while True:
            os.eventfd_read(self.fd)
            while self.calls:
                fut, fn = self.calls.popleft()
                fut.get_loop().call_soon_threadsafe(_resolve_with, fut, fn())

    async def run(self, fn: Any) -> Any:
        fut = asyncio.get_running_loop().create_future()
        self.calls.append((fut, fn))
        os.eventfd_write(self.fd, 1)
        return await fut


def _resolve_with(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


class _EventfdWorker(_BareWorker):
    """:class:`_BareWorker` that wakes the loop through an eventfd it watches, batched.

    The loop watches the eventfd (``add_reader``) and resolves every finished
    call in one wake-up, as asgibridge's thread mode does since issue 14's
    third pass; no ``call_soon_threadsafe``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: deque[tuple[asyncio.Future[Any], Any]] = deque()
        self.posted = False
        self.wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        loop.add_reader(self.wake, self._drain)
        super().__init__()

    def _serve(self) -> None:
        while True:
            os.eventfd_read(self.fd)
            while self.calls:
                fut, fn = self.calls.popleft()
                self.done.append((fut, fn()))
                if not self.posted:
                    self.posted = True
                    os.eventfd_write(self.wake, 1)

    def _drain(self) -> None:
        try:
            os.eventfd_read(self.wake)  # before the flag is lowered: later results wake again
        except BlockingIOError:
            pass
        self.posted = False
        while self.done:
            _resolve_with(*self.done.popleft())


_workers: list[_BareWorker] = []
_builder: list[Any] = []


def _wsgi_floor(greenlet: bool, eventfd: bool = False) -> Any:
    """A WSGI -> ASGI "bridge" doing only what no bridge can skip (see wsgi_inprocess).

    It builds the environ with asgibridge's builder, runs the raw WSGI hello
    in a pooled greenlet or on one parked thread (an eventfd hand-off), and
    sends the two messages with naively encoded headers. No checks, no
    streaming, no request body, no disconnects: not a usable bridge, the
    ceiling for any bridge of that mode on the same server in the same run.
    ``eventfd``: the thread answers through an eventfd the loop watches
    (:class:`_EventfdWorker`) instead of ``call_soon_threadsafe``.
    """
    import io

    from asgibridge._core import run_in_greenlet

    try:
        from asgibridge._codec import EnvironBuilder
    except ImportError:  # a tree from before the layout of issue 10 (--baseline)
        from asgibridge._environ import EnvironBuilder  # type: ignore[no-redef,import-not-found,unused-ignore]
    from examples.wsgi_hello import app as wsgi_app

    builder = EnvironBuilder(errors=io.StringIO(), multithread=True)

    async def bridge(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        environ = builder.build(scope)
        environ["wsgi.input"] = io.BytesIO(b"")
        started: list[Any] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            started.append((status, headers))

        def run() -> list[bytes]:
            return list(wsgi_app(environ, start_response))

        if greenlet:
            chunks = await run_in_greenlet(run)
        else:
            if not _workers:
                loop = asyncio.get_running_loop()
                _workers.append(_EventfdWorker(loop) if eventfd else _BareWorker())
            chunks = await _workers[0].run(run)
        status, headers = started[-1]
        await send(
            {
                "type": "http.response.start",
                "status": int(status[:3]),
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    return bridge


def __getattr__(name: str) -> Any:
    """``wsgi_greenlet_floor``, ``wsgi_thread_floor`` and ``thread_active_2``, made when loaded."""
    if name in ("wsgi_greenlet_floor", "wsgi_thread_floor", "wsgi_thread_floor_eventfd"):
        app = _wsgi_floor(name == "wsgi_greenlet_floor", name.endswith("_eventfd"))
        globals()[name] = app
        return app
    if name == "thread_active_2":  # thread mode with the default of before (issue 14)
        from asgibridge.wsgi import WsgiToAsgi
        from examples.wsgi_hello import app as wsgi_app

        globals()[name] = bridge = WsgiToAsgi(wsgi_app, active_workers=2)
        return bridge
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def thread_floor(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Native hello plus one bare loop -> thread -> loop round trip, as thread mode makes."""
    if scope["type"] != "http":
        return
    if not _hand_off:
        _hand_off.append(_BareHandOff())
    await _hand_off[0].call()
    await send(_START)
    await send(_BODY)


#: The contenders of a uvicorn group, the same on each HTTP parser.
_UVICORN_APPS = {
    "native ASGI": "examples.wsgi_hello:native_asgi",
    "WsgiToAsgi greenlet": "examples.wsgi_hello:asgi_greenlet",
    "WsgiToAsgi thread": "examples.wsgi_hello:asgi_thread",
    "thread, active_workers=2": "benchmarks.granian_e2e:thread_active_2",
    "floor, greenlet": "benchmarks.granian_e2e:wsgi_greenlet_floor",
    "floor, thread": "benchmarks.granian_e2e:wsgi_thread_floor",
    "floor, thread, eventfd": "benchmarks.granian_e2e:wsgi_thread_floor_eventfd",
}


def _uvicorn_group(parser: str) -> dict[tuple[str, str], tuple[str, str]]:
    """Group ``uvicorn PARSER``: every uvicorn contender, served with ``--http PARSER``."""
    return {(f"uvicorn {parser}", k): (f"uvicorn-{parser}", v) for k, v in _UVICORN_APPS.items()}


# (group, contender) -> (server, target). The first contender of a group is its baseline.
CONTENDERS: dict[tuple[str, str], tuple[str, str]] = {
    ("granian asgi", "native ASGI"): ("granian-asgi", "examples.wsgi_hello:native_asgi"),
    ("granian asgi", "WsgiToAsgi greenlet"): ("granian-asgi", "examples.wsgi_hello:asgi_greenlet"),
    ("granian asgi", "WsgiToAsgi thread"): ("granian-asgi", "examples.wsgi_hello:asgi_thread"),
    ("granian asgi", "thread, active_workers=2"): (
        "granian-asgi",
        "benchmarks.granian_e2e:thread_active_2",
    ),
    ("granian asgi", "a2wsgi WSGIMiddleware"): ("granian-asgi", "examples.wsgi_hello:a2wsgi_app"),
    ("granian asgi", "floor, greenlet"): (
        "granian-asgi",
        "benchmarks.granian_e2e:wsgi_greenlet_floor",
    ),
    ("granian asgi", "floor, thread"): ("granian-asgi", "benchmarks.granian_e2e:wsgi_thread_floor"),
    ("granian asgi", "floor, thread, eventfd"): (
        "granian-asgi",
        "benchmarks.granian_e2e:wsgi_thread_floor_eventfd",
    ),
    ("granian asgi", "native + 1 greenlet call"): (
        "granian-asgi",
        "benchmarks.granian_e2e:greenlet_floor",
    ),
    ("granian asgi", "native + 1 thread round trip"): (
        "granian-asgi",
        "benchmarks.granian_e2e:thread_floor",
    ),
    **_uvicorn_group("h11"),
    **_uvicorn_group("httptools"),
    ("granian wsgi", "raw WSGI"): ("granian-wsgi", "examples.asgi_hello:wsgi_hello"),
    ("granian wsgi", "AsgiToWsgi"): ("granian-wsgi", "examples.asgi_hello:asgibridge_app"),
    ("granian wsgi", "a2wsgi ASGIMiddleware"): ("granian-wsgi", "examples.asgi_hello:a2wsgi_app"),
    ("granian wsgi", "floor"): ("granian-wsgi", "examples.asgi_hello:handoff_floor"),
    ("granian wsgi", "floor, batched"): (
        "granian-wsgi",
        "examples.asgi_hello:handoff_floor_batched",
    ),
    ("granian wsgi", "floor, eventfd"): (
        "granian-wsgi",
        "examples.asgi_hello:handoff_floor_eventfd",
    ),
    ("gunicorn", "raw WSGI"): ("gunicorn", "examples.asgi_hello:wsgi_hello"),
    ("gunicorn", "AsgiToWsgi"): ("gunicorn", "examples.asgi_hello:asgibridge_app"),
    ("gunicorn", "floor"): ("gunicorn", "examples.asgi_hello:handoff_floor"),
    ("gunicorn", "floor, batched"): ("gunicorn", "examples.asgi_hello:handoff_floor_batched"),
    ("gunicorn", "floor, eventfd"): ("gunicorn", "examples.asgi_hello:handoff_floor_eventfd"),
    ("waitress", "raw WSGI"): ("waitress", "examples.asgi_hello:wsgi_hello"),
    ("waitress", "AsgiToWsgi"): ("waitress", "examples.asgi_hello:asgibridge_app"),
    ("waitress", "a2wsgi ASGIMiddleware"): ("waitress", "examples.asgi_hello:a2wsgi_app"),
    ("waitress", "floor"): ("waitress", "examples.asgi_hello:handoff_floor"),
    ("waitress", "floor, batched"): ("waitress", "examples.asgi_hello:handoff_floor_batched"),
    ("waitress", "floor, eventfd"): ("waitress", "examples.asgi_hello:handoff_floor_eventfd"),
}

TARGETS = {
    ("granian asgi", "WsgiToAsgi greenlet"): 0.70,
    ("granian asgi", "WsgiToAsgi thread"): 0.45,
    ("uvicorn h11", "WsgiToAsgi greenlet"): 0.84,
    ("uvicorn httptools", "WsgiToAsgi greenlet"): 0.84,
    ("uvicorn h11", "WsgiToAsgi thread"): 0.71,
    ("uvicorn httptools", "WsgiToAsgi thread"): 0.71,
    ("granian wsgi", "AsgiToWsgi"): 0.50,
    ("gunicorn", "AsgiToWsgi"): 0.50,
    ("waitress", "AsgiToWsgi"): 0.50,
}

#: (group, contender) -> the floor it is compared with in the summary.
FLOORS = {
    ("granian asgi", "WsgiToAsgi greenlet"): "floor, greenlet",
    ("granian asgi", "WsgiToAsgi thread"): "floor, thread, eventfd",
    ("uvicorn h11", "WsgiToAsgi greenlet"): "floor, greenlet",
    ("uvicorn httptools", "WsgiToAsgi greenlet"): "floor, greenlet",
    ("uvicorn h11", "WsgiToAsgi thread"): "floor, thread, eventfd",
    ("uvicorn httptools", "WsgiToAsgi thread"): "floor, thread, eventfd",
    ("granian asgi", "thread, active_workers=2"): "floor, thread, eventfd",
    ("uvicorn h11", "thread, active_workers=2"): "floor, thread, eventfd",
    ("uvicorn httptools", "thread, active_workers=2"): "floor, thread, eventfd",
    ("granian wsgi", "AsgiToWsgi"): "floor, eventfd",
    ("gunicorn", "AsgiToWsgi"): "floor, eventfd",
    ("waitress", "AsgiToWsgi"): "floor, eventfd",
}

#: (group, contender) -> a second floor shown beside it: the floor before the eventfd wake-up
#: (``call_soon_threadsafe``; for ``AsgiToWsgi``, the rule A1 floor as issue 14 defines it).
OTHER_FLOORS = {
    ("granian asgi", "WsgiToAsgi thread"): "floor, thread",
    ("uvicorn h11", "WsgiToAsgi thread"): "floor, thread",
    ("uvicorn httptools", "WsgiToAsgi thread"): "floor, thread",
    ("granian wsgi", "AsgiToWsgi"): "floor",
    ("gunicorn", "AsgiToWsgi"): "floor",
    ("waitress", "AsgiToWsgi"): "floor",
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
    if server.startswith("uvicorn-"):
        return [
            py, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--log-level", "warning", "--no-access-log", "--loop", "asyncio",
            "--http", server.split("-", 1)[1],
        ]  # fmt: skip
    if server == "gunicorn":
        from .asgi_e2e import _NO_CONTROL_SOCKET

        return [
            py, "-m", "gunicorn", target, "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--worker-class", "gthread", "--threads", "8", "--log-level", "warning",
            *_NO_CONTROL_SOCKET,
        ]  # fmt: skip
    if server == "waitress":
        return [
            py, "-m", "waitress", "--host", "127.0.0.1", "--port", str(port), "--threads", "8",
            target,
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


class Server:
    """One server process serving one contender, idle between its measurement windows."""

    def __init__(
        self, server: str, target: str, log: Path, granian_loop: str, root: Path = ROOT
    ) -> None:
        self.port = _harness.free_port()
        self._err = log.open("ab")
        self._err.write(f"==== {server} {target} ({root})\n".encode())
        self._err.flush()
        self.name = server
        self.proc = subprocess.Popen(
            command(server, target, self.port, granian_loop),
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
            stdout=self._err,
            stderr=self._err,
            start_new_session=True,
        )

    def ready(self) -> None:
        _harness.wait_ready(self.port, self.proc, self.name)

    def measure(self, seconds: float, connections: int) -> tuple[float, float, int]:
        """Drive it with wrk: (req/s, server CPU us per request, non-2xx + socket errors)."""
        cpu0 = _tree_cpu(self.proc.pid)
        rps, non2xx, errors = _harness.wrk(self.port, seconds, connections)
        cpu = (_tree_cpu(self.proc.pid) - cpu0) / max(rps * seconds, 1.0) * 1e6
        return rps, cpu, non2xx + errors

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        except ProcessLookupError:
            pass
        self._err.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds of 1 s")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="wrk window per contender")
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
    rounds = args.rounds or (5 if args.quick else 15)
    seconds = args.seconds or (1.0 if args.quick else 2.0)
    groups: dict[str, list[tuple[str, str]]] = {}
    roots: dict[tuple[str, str], Path] = {}
    for key in list(CONTENDERS):
        if args.only and key[0] not in args.only:
            continue
        groups.setdefault(key[0], []).append(key)
        roots[key] = ROOT
        if args.baseline is not None and "To" in key[1]:  # WsgiToAsgi / AsgiToWsgi
            base_key = (key[0], key[1] + " @base")
            CONTENDERS[base_key] = CONTENDERS[key]
            roots[base_key] = args.baseline.resolve()
            groups[key[0]].append(base_key)
    log = Path(tempfile.gettempdir()) / "asgibridge-granian-e2e.log"
    log.write_bytes(b"")
    print(
        f"one worker per server, wrk -t1 -c{args.connections}, {rounds} rounds of "
        f"{seconds:g} s per contender; granian --loop {args.granian_loop}; 2 cores"
    )
    for group, keys in groups.items():
        # Every contender of the group is served at once (idle servers cost nothing),
        # so that rounds interleave the contenders within seconds of each other.
        load0 = os.getloadavg()[0]
        servers = {
            key: Server(*CONTENDERS[key], log=log, granian_loop=args.granian_loop, root=roots[key])
            for key in keys
        }
        rps: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
        cpu: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
        bad = dict.fromkeys(keys, 0)
        try:
            for server in servers.values():
                server.ready()
            for server in servers.values():
                _harness.wrk(server.port, 1.0, args.connections)  # warm-up
            for r in range(rounds):
                order = keys[r % len(keys) :] + keys[: r % len(keys)]
                for key in order:
                    value, used, failed = servers[key].measure(seconds, args.connections)
                    rps[key].append(value)
                    cpu[key].append(used)
                    bad[key] += failed
        finally:
            for server in servers.values():
                server.stop()
        _report(group, keys, rps, cpu, bad, load0)
    print(f"server logs: {log}")


def _report(
    group: str,
    keys: list[tuple[str, str]],
    rps: dict[tuple[str, str], list[float]],
    cpu: dict[tuple[str, str], list[float]],
    bad: dict[tuple[str, str], int],
    load0: float,
) -> None:
    """Print one group: medians, and the median over rounds of each round's ratio."""
    base = keys[0]

    def ratio(key: tuple[str, str], to: tuple[str, str]) -> float:
        return statistics.median(a / b for a, b in zip(rps[key], rps[to], strict=True))

    def cpu_ratio(key: tuple[str, str], to: tuple[str, str]) -> float:
        return statistics.median(a / b for a, b in zip(cpu[key], cpu[to], strict=True))

    print(
        f"\n{group}: load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end; "
        f"ratios are medians of per-round ratios"
    )
    print(
        f"| contender | req/s | of {base[1]} | target | of its floor | of the other floor "
        "| server CPU us/req | floor's CPU / its CPU | bad |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in keys:
        target = TARGETS.get((key[0], key[1].removesuffix(" @base")))
        floor_name = FLOORS.get((key[0], key[1].removesuffix(" @base")))
        floor = (group, floor_name) if floor_name else None
        other_name = OTHER_FLOORS.get((key[0], key[1].removesuffix(" @base")))
        other = (group, other_name) if other_name else None
        print(
            f"| {key[1]} | {statistics.median(rps[key]):,.0f} | {ratio(key, base):.2f} | "
            f"{f'>= {target:.2f}' if target else ''} | "
            f"{f'{ratio(key, floor):.2f} ({floor_name})' if floor in rps else ''} | "
            f"{f'{ratio(key, other):.2f} ({other_name})' if other in rps else ''} | "
            f"{statistics.median(cpu[key]):.1f} | "
            f"{f'{cpu_ratio(floor, key):.2f}' if floor in cpu else ''} | {bad[key]} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
