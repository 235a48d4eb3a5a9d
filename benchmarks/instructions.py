"""Instructions per request (cachegrind), this tree against a baseline tree, in one run.

Run with ``python -m benchmarks.instructions`` (needs ``valgrind``)::

    python -m benchmarks.instructions --baseline /tmp/base      # now vs a tree
    python -m benchmarks.instructions --only wsgi.thread.get,sync.a2s --n 400

Time on a shared machine is noisy; the number of instructions the
interpreter executes is not. Every scenario is an in-process driver with no
server and no sockets: an ASGI callable driven with a minimal ``receive`` /
``send`` (``WsgiToAsgi``, ``Dispatcher``), a WSGI callable driven with a
minimal environ and ``start_response`` (``AsgiToWsgi``), or a tight loop of
``sync_to_async`` / ``async_to_sync`` calls. The apps are bare WSGI and ASGI
callables, not frameworks, so that the bridge is most of what is counted.

Method (one scenario, one tree)::

    PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no --fair-sched=yes \\
        python -P -m benchmarks.instructions --drive SCENARIO N

runs the driver for ``N`` and for ``2N`` requests, each after the same
warm-up; Ir per request is ``(Ir(2N) - Ir(N)) / N``, so interpreter start-up,
imports, warm-up and shutdown cancel out. A tree is a directory holding an
``asgibridge`` package; the driver runs with only that package on
``sys.path`` ahead of this ``benchmarks`` package (and prints the file it
imported, which is checked), and uses only the public API, so the same
driver measures the tree before and after a restructuring.

Determinism: valgrind runs one thread at a time. With its default lock,
which thread runs next after a hand-off depends on the host's timing, and
thread-mode counts moved by up to 1% between identical runs (17% with the N
and 2N runs side by side on a busy host). With ``--fair-sched=yes`` (used
here) threads take turns in a fixed order, and identical runs mostly agree
to 0.3% or better; single-threaded scenarios (greenlet mode) repeat to a few
instructions. Under heavy load a thread-mode run can still come out high
(one run in about fifteen, by 10%, at a load average of 25): a disturbed
hand-off only ever adds instructions, so ``--repeat K`` takes the least
Ir(N) and the least Ir(2N) over K runs, and prints the spread of the
repeats. Use ``--repeat 3`` for a verdict on thread mode.
A ratio above ``--limit`` (1.02) is flagged.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 100  # requests before the counted ones, the same for N and 2N
BODY = b"name=asgibridge&version=0.1.0&" + b"x" * 70  # 100 bytes: a small form post

# --------------------------------------------------------------------------------------
# The apps. GET answers "ok"; POST reads its body (as far as CONTENT_LENGTH says) and
# answers its length, so a body that did not arrive shows up as a wrong answer.


def wsgi_post(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A WSGI app that reads the request body and answers its length."""
    data = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    out = str(len(data)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]


async def asgi_post(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app that reads the request body and answers its length."""
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    out = str(len(b"".join(chunks))).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(out))],
        }
    )
    await send({"type": "http.response.body", "body": out})


# --------------------------------------------------------------------------------------
# Drivers. Each builds its bridge, checks one response in full, warms up, makes n
# requests or calls, and closes what it opened. Imports of asgibridge happen here,
# in the driven process, never in the process that runs valgrind.

Driver = Callable[[int], None]
EXPECTED_POST = str(len(BODY)).encode()


def _post_scope() -> dict[str, Any]:
    from .dispatch import scope_for

    scope = scope_for("/submit")
    scope["method"] = "POST"
    scope["headers"] = [
        *scope["headers"],
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(BODY)).encode()),
    ]
    return scope


def drive_asgi(app: Any, scope: dict[str, Any], body: bytes, expect: bytes, n: int) -> None:
    """Send ``WARMUP`` + ``n`` requests to the ASGI ``app``, one at a time, on one loop."""
    request = {"type": "http.request", "body": body, "more_body": False}
    disconnect = {"type": "http.disconnect"}

    async def one(out: list[Any] | None) -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return disconnect
            sent = True
            return request

        async def send(message: dict[str, Any]) -> None:
            if out is not None:
                out.append(message)
            elif message["type"] == "http.response.start" and message["status"] != 200:
                raise RuntimeError(f"unexpected status {message['status']}")

        await app(dict(scope), receive, send)

    async def main() -> None:
        out: list[Any] = []
        await one(out)
        got = b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")
        if out[0].get("status") != 200 or got != expect:
            raise RuntimeError(f"bad response: {out!r}")
        for _ in range(WARMUP):
            await one(None)
        for _ in range(n):
            await one(None)
        aclose = getattr(app, "aclose", None)
        if aclose is not None:
            await aclose()

    asyncio.run(main())


def drive_wsgi(app: Any, environ: dict[str, Any], body: bytes, expect: bytes, n: int) -> None:
    """Call the WSGI ``app`` ``WARMUP`` + ``n`` times from this thread, as a WSGI server."""
    import io

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        if status[:3] != "200":
            raise RuntimeError(f"unexpected status {status}")
        return None

    def one() -> bytes:
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(body)
        result = app(env, start_response)
        try:
            return b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    try:
        got = one()
        if got != expect:
            raise RuntimeError(f"bad response body {got!r}")
        for _ in range(WARMUP):
            one()
        for _ in range(n):
            one()
    finally:
        app.close()


def _wsgi_to_asgi(executor: str, post: bool) -> Driver:
    def run(n: int) -> None:
        from asgibridge import WsgiToAsgi

        from .dispatch import scope_for, wsgi_child

        if post:
            app = WsgiToAsgi(wsgi_post, executor=executor)  # type: ignore[arg-type]
            drive_asgi(app, _post_scope(), BODY, EXPECTED_POST, n)
        else:
            app = WsgiToAsgi(wsgi_child, executor=executor)  # type: ignore[arg-type]
            drive_asgi(app, scope_for("/"), b"", b"ok", n)

    return run


def _asgi_to_wsgi(post: bool) -> Driver:
    def run(n: int) -> None:
        from asgibridge import AsgiToWsgi

        from .dispatch import child, environ_for

        environ = environ_for("/submit" if post else "/")
        if post:
            environ["REQUEST_METHOD"] = "POST"
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
            environ["CONTENT_LENGTH"] = str(len(BODY))
            drive_wsgi(AsgiToWsgi(asgi_post, lifespan="off"), environ, BODY, EXPECTED_POST, n)
        else:
            drive_wsgi(AsgiToWsgi(child, lifespan="off"), environ, b"", b"ok", n)

    return run


def _dispatcher(executor: str) -> Driver:
    def run(n: int) -> None:
        from asgibridge import Dispatcher

        from .dispatch import MOUNTS, PATH, scope_for, wsgi_child

        app = Dispatcher(
            {m: wsgi_child for m in MOUNTS},
            default=wsgi_child,
            wsgi_options={"executor": executor},
        )
        drive_asgi(app, scope_for(PATH), b"", b"ok", n)  # the children close at exit

    return run


def f() -> int:
    return 1


async def coro() -> int:
    return 1


def _drive_async(make: Callable[[], Callable[[], Awaitable[Any]]], n: int) -> None:
    """Await ``make()()`` ``WARMUP`` + ``n`` times on one running loop."""

    async def main() -> None:
        call = make()
        if await call() != 1:
            raise RuntimeError("bad result")
        for _ in range(WARMUP):
            await call()
        for _ in range(n):
            await call()

    asyncio.run(main())


def _s2a(**options: Any) -> Driver:
    def run(n: int) -> None:
        import asgibridge.sync
        from asgibridge import sync_to_async

        _drive_async(lambda: sync_to_async(f, **options), n)
        asgibridge.sync.shutdown()

    return run


def _a2s_thread(n: int) -> None:
    import asgibridge.sync
    from asgibridge import async_to_sync

    failed: list[BaseException] = []

    def body() -> None:
        try:
            call = async_to_sync(coro)
            if call() != 1:
                raise RuntimeError("bad result")
            for _ in range(WARMUP + n):
                call()
        except BaseException as exc:  # reported by the main thread
            failed.append(exc)

    t = threading.Thread(target=body, name="bench-plain-thread")
    t.start()
    t.join()
    asgibridge.sync.shutdown()
    if failed:
        raise failed[0]


def _greenlet_round_trip(n: int) -> None:
    """One greenlet-mode ``sync_to_async`` call whose function awaits ``coro`` once."""
    import asgibridge.sync
    from asgibridge import async_to_sync, sync_to_async

    a2s = async_to_sync(coro)
    _drive_async(lambda: sync_to_async(a2s, executor="greenlet"), n)
    asgibridge.sync.shutdown()


def granian_environ() -> dict[str, Any]:
    """A GET environ shaped like granian 2.8's: it copies the process environment in.

    granian's WSGI environ held 56 keys for ``wrk``'s GET (3 request headers):
    33 of them were the server process's environment variables. A scope
    builder that walks every key pays for them on each request; this
    environ has the same shape with stand-in variables.
    """
    environ: dict[str, Any] = {f"PROCESS_ENV_VAR_{i}": f"/some/value/{i}" for i in range(33)}
    environ.update(
        {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SCRIPT_NAME": "",
            "SERVER_SOFTWARE": "Granian",
            "wsgi.errors": None,
            "wsgi.input_terminated": True,
            "wsgi.multiprocess": False,
            "wsgi.multithread": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "REMOTE_ADDR": "127.0.0.1",
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "wsgi.url_scheme": "http",
            "wsgi.input": None,
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_ACCEPT": "*/*",
            "HTTP_USER_AGENT": "wrk",
        }
    )
    return environ


def _asgi_to_wsgi_granian(n: int) -> None:
    from asgibridge import AsgiToWsgi

    from .dispatch import child

    drive_wsgi(AsgiToWsgi(child, lifespan="off"), granian_environ(), b"", b"ok", n)


def _wsgi_floor(greenlet: bool, eventfd: bool = False) -> Driver:
    """The WSGI -> ASGI floor of ``granian_e2e`` (environ, one hand-off, two sends, no checks)."""

    def run(n: int) -> None:
        from examples.wsgi_hello import BODY as HELLO

        from .dispatch import scope_for
        from .granian_e2e import _wsgi_floor as floor

        drive_asgi(floor(greenlet, eventfd), scope_for("/"), b"", HELLO, n)

    return run


def _asgi_floor(batched: bool, eventfd: bool = False) -> Driver:
    """The rule A1 floor of ``AsgiToWsgi`` (one loop round trip and one task, no ASGI)."""

    def run(n: int) -> None:
        from examples import asgi_hello

        class Floor:  # drive_wsgi closes the app at the end
            def __init__(self, app: Any) -> None:
                self.app = app

            def __call__(self, environ: Any, start_response: Any) -> Any:
                return self.app(environ, start_response)

            def close(self) -> None:
                return None

        from .dispatch import environ_for

        if eventfd:
            app = asgi_hello.handoff_floor_eventfd
        else:
            app = asgi_hello.handoff_floor_batched if batched else asgi_hello.handoff_floor
        drive_wsgi(Floor(app), environ_for("/"), b"", asgi_hello.BODY, n)

    return run


N_THREADS = 1600  # default N where threads hand off (valgrind runs them one at a time)
N_ONE = 3200  # default N on one thread

#: name -> (what one request or call is, driver, default N)
SCENARIOS: dict[str, tuple[str, Driver, int]] = {
    "wsgi.thread.get": ("WsgiToAsgi thread, GET", _wsgi_to_asgi("thread", False), N_THREADS),
    "wsgi.thread.post": ("WsgiToAsgi thread, POST 100 B", _wsgi_to_asgi("thread", True), N_THREADS),
    "wsgi.greenlet.get": ("WsgiToAsgi greenlet, GET", _wsgi_to_asgi("greenlet", False), N_ONE),
    "wsgi.greenlet.post": (
        "WsgiToAsgi greenlet, POST 100 B",
        _wsgi_to_asgi("greenlet", True),
        N_ONE,
    ),
    "asgi.get": ("AsgiToWsgi, GET", _asgi_to_wsgi(False), N_THREADS),
    "asgi.get.granian": (
        "AsgiToWsgi, GET, granian's environ",
        _asgi_to_wsgi_granian,
        N_THREADS,
    ),
    "asgi.post": ("AsgiToWsgi, POST 100 B", _asgi_to_wsgi(True), N_THREADS),
    "sync.s2a_ts": ("sync_to_async thread_sensitive", _s2a(), N_THREADS),
    "sync.s2a_pool": (
        "sync_to_async thread_sensitive=False",
        _s2a(thread_sensitive=False),
        N_THREADS,
    ),
    "sync.a2s": ("async_to_sync, plain thread", _a2s_thread, N_THREADS),
    "sync.s2a_greenlet": ("sync_to_async greenlet", _s2a(executor="greenlet"), N_ONE),
    "sync.greenlet_a2s": ("greenlet s2a + a2s round trip", _greenlet_round_trip, N_ONE),
    "floor.wsgi.thread.get": ("floor of WsgiToAsgi thread, GET", _wsgi_floor(False), N_THREADS),
    "floor.wsgi.greenlet.get": ("floor of WsgiToAsgi greenlet, GET", _wsgi_floor(True), N_ONE),
    "floor.asgi.get": ("floor of AsgiToWsgi (A1), GET", _asgi_floor(False), N_THREADS),
    "floor.asgi.batched": ("floor of AsgiToWsgi (A1), batched", _asgi_floor(True), N_THREADS),
    "floor.asgi.eventfd": (
        "floor of AsgiToWsgi (A1), batched, eventfd wake",
        _asgi_floor(True, eventfd=True),
        N_THREADS,
    ),
    "floor.wsgi.thread.eventfd": (
        "floor of WsgiToAsgi thread, GET, eventfd back",
        _wsgi_floor(False, eventfd=True),
        N_THREADS,
    ),
    "dispatch.thread.get": (
        "Dispatcher > WsgiToAsgi thread, GET",
        _dispatcher("thread"),
        N_THREADS,
    ),
    "dispatch.greenlet.get": (
        "Dispatcher > WsgiToAsgi greenlet, GET",
        _dispatcher("greenlet"),
        N_ONE,
    ),
}


# --------------------------------------------------------------------------------------
# The measuring side: no asgibridge import here.


def tree_pythonpath(tree: Path, scratch: Path) -> str:
    """PYTHONPATH that runs this checkout's ``benchmarks`` (and ``tests``) on ``tree``'s package.

    ``tree`` is a directory holding an ``asgibridge`` package. Symbolic links
    in ``scratch`` put that package first, then this checkout's ``benchmarks``
    ``tests`` and ``examples`` folders, and nothing else of either tree; run the process
    with ``python -P`` so that no working directory comes in front.
    """
    package = tree / "asgibridge"
    if not (package / "__init__.py").is_file():
        raise SystemExit(f"{tree} holds no asgibridge package: pass the directory that does")
    home = Path(tempfile.mkdtemp(prefix="tree-", dir=scratch))
    (home / "asgibridge").symlink_to(package.resolve())
    bench = scratch / "bench"
    if not bench.exists():
        bench.mkdir()
        for name in ("benchmarks", "tests", "examples"):
            (bench / name).symlink_to(ROOT / name)
    return f"{home}{os.pathsep}{bench}"


def count(scenario: str, n: int, pythonpath: str, tree: Path, scratch: Path, timeout: float) -> int:
    """Instructions executed by one driven process (``scenario``, ``n`` requests)."""
    fd, out = tempfile.mkstemp(prefix="cg-", dir=scratch)
    os.close(fd)
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": pythonpath}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cmd = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--fair-sched=yes",  # threads take turns in a fixed order: see the module docstring
        f"--cachegrind-out-file={out}",
        sys.executable,
        "-P",  # nothing but PYTHONPATH in front: the tree's asgibridge, then benchmarks/
        "-c",
        f"from benchmarks.instructions import drive; drive({scenario!r}, {n})",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{scenario} n={n} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    imported = Path(proc.stdout.strip().splitlines()[-1]).resolve()
    if not imported.is_relative_to((tree / "asgibridge").resolve()):
        raise RuntimeError(f"{scenario} imported asgibridge from {imported}, not from {tree}")
    text = Path(out).read_text()
    os.unlink(out)
    match = re.search(r"^summary:\s+(\d+)", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no summary line in cachegrind output for {scenario}")
    return int(match.group(1))


def counts_n_2n(
    scenario: str, n: int, pythonpath: str, tree: Path, scratch: Path, timeout: float
) -> tuple[int, int]:
    """(Ir(n), Ir(2n)), the two runs side by side.

    One native run first writes every ``.pyc`` the driver needs: two runs
    that both start on a fresh tree race to compile it, and the one that
    compiles more counted millions of instructions more (a 10-30% error).
    """
    warm = f"from benchmarks.instructions import drive; drive({scenario!r}, 1)"
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": pythonpath}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-P", "-c", warm], env=env, check=True, capture_output=True)
    with ThreadPoolExecutor(2) as pool:  # the two runs are independent
        small = pool.submit(count, scenario, n, pythonpath, tree, scratch, timeout)
        big = pool.submit(count, scenario, 2 * n, pythonpath, tree, scratch, timeout)
        return small.result(), big.result()


def per_request(samples: list[tuple[int, int]], n: int) -> tuple[float, float]:
    """(Ir/request, spread): ``(min Ir(2n) - min Ir(n)) / n`` over the repeats.

    A thread hand-off disturbed by the host only ever adds instructions (an
    extra wake-up, a forced GIL switch), so the least count of each size is
    the undisturbed one; the spread is that of the repeats' own differences.
    """
    diffs = [(big - small) / n for small, big in samples]
    best = (min(b for _, b in samples) - min(s for s, _ in samples)) / n
    return best, max(diffs) - min(diffs)


def drive(scenario: str, n: int) -> None:
    """The driven side: run one scenario, then print where asgibridge came from."""
    import faulthandler

    faulthandler.dump_traceback_later(900, exit=True)  # never hang under valgrind
    import asgibridge
    from asgibridge.sync import set_greenlet_hold_warning

    # Under valgrind a greenlet call can take longer than the hold warning's limit:
    # the warning's own logging would then be counted as the bridge's work.
    set_greenlet_hold_warning(None)
    SCENARIOS[scenario][1](n)

    print(asgibridge.__file__, flush=True)


def driver_digest() -> str:
    """A digest of the drivers: this file's apps and drivers, and ``dispatch.py``.

    Counts saved by other drivers may differ for reasons of their own.
    """
    here = Path(__file__).resolve().parent
    own = (here / "instructions.py").read_bytes()
    own = own[own.index(b"# The apps.") : own.index(b"# The measuring side")]
    return hashlib.sha256(own + (here / "dispatch.py").read_bytes()).hexdigest()[:12]


def read_saved(path: Path) -> tuple[str, dict[str, float]]:
    """The driver digest and the ``scenario Ir/request`` pairs a ``--save`` file holds."""
    digest, counts = "", {}
    for line in path.read_text().splitlines():
        if line.startswith("# drivers "):
            digest = line.split()[2]
        elif line.strip() and not line.startswith("#"):
            name, _, ir = line.split()
            counts[name] = float(ir)
    return digest, counts


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table; exit status 1 if a ratio is above ``--limit``."""
    import argparse
    import shutil

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="the tree measured (default: ..)")
    parser.add_argument("--baseline", type=Path, help="a tree to compare against (its package)")
    parser.add_argument(
        "--baseline-file", type=Path, help="compare against counts saved by --save instead"
    )
    parser.add_argument("--save", type=Path, help="write the 'now' counts to this file")
    parser.add_argument("--only", help="comma-separated scenario names (see --list)")
    parser.add_argument("--n", type=int, help="requests per run (default: per scenario)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measure each K times; use the least counts"
    )
    parser.add_argument("--limit", type=float, default=1.02, help="flag ratios above this")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per valgrind run")
    parser.add_argument("--list", action="store_true", help="list the scenarios")
    parser.add_argument("--drive", nargs=2, metavar=("SCENARIO", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:  # the driven side, as the first version of this tool ran it
        drive(args.drive[0], int(args.drive[1]))
        return 0
    if args.list:
        for name, (what, _, n) in SCENARIOS.items():
            print(f"{name:<24} {what} (N={n})")
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install -y valgrind", file=sys.stderr)
        return 2
    names = list(SCENARIOS)
    if args.only:
        names = [s.strip() for s in args.only.split(",")]
        unknown = [s for s in names if s not in SCENARIOS]
        if unknown:
            parser.error(f"unknown scenarios {unknown}; --list shows them")
    trees = {"now": args.tree}
    if args.baseline is not None:
        trees["base"] = args.baseline
    saved: dict[str, float] = {}
    if args.baseline_file is not None:
        if args.baseline is not None:
            parser.error("pass --baseline or --baseline-file, not both")
        digest, saved = read_saved(args.baseline_file)
        if digest != driver_digest():
            print(
                f"warning: {args.baseline_file} was saved by other drivers ({digest}, these are"
                f" {driver_digest()}); its counts may not compare",
                file=sys.stderr,
            )
    rows: list[str] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="instructions-") as tmp:
        scratch = Path(tmp)
        paths = {k: tree_pythonpath(t, scratch) for k, t in trees.items()}
        base_name = args.baseline or args.baseline_file
        print(f"now: {args.tree}" + (f"   base: {base_name}" if base_name else ""))
        print(f"Ir per request = (Ir(2N) - Ir(N)) / N, cachegrind, PYTHONHASHSEED=0, {sys.version}")
        print(f"{'scenario':<24}{'N':>6}{'Ir/req now':>13}{'base':>13}{'ratio':>8}  spread")
        for name in names:
            t0 = time.monotonic()
            n = args.n or SCENARIOS[name][2]
            samples: dict[str, list[tuple[int, int]]] = {k: [] for k in trees}
            for _ in range(args.repeat):
                for key in trees:  # interleaved, although Ir hardly needs it
                    samples[key].append(
                        counts_n_2n(name, n, paths[key], trees[key], scratch, args.timeout)
                    )
            got = {k: per_request(v, n) for k, v in samples.items()}
            now, spread = got.pop("now")
            rows.append(f"{name} {n} {now:.0f}")
            row = f"{name:<24}{n:>6}{now:>13.0f}"
            if name in saved:
                got["base"] = (saved[name], 0.0)
            if "base" in got:
                base = got["base"][0]
                ratio = now / base
                flag = "  > limit" if ratio > args.limit else ""
                failed |= ratio > args.limit
                spread = max(spread, got["base"][1])
                row += f"{base:>13.0f}{ratio:>8.3f}"
            else:
                row += f"{'':>13}{'':>8}"
                flag = ""
            row += f"  {spread:.0f}" if args.repeat > 1 else "  -"
            print(f"{row}{flag}   ({time.monotonic() - t0:.0f}s)", flush=True)
    if args.save is not None:
        header = f"# drivers {driver_digest()} tree {args.tree.resolve()} python {sys.version}"
        args.save.write_text("\n".join([header, "# scenario N Ir/request", *rows]) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
