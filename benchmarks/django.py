"""Django's request cycle: stock asgiref against asgibridge.django, in-process and end to end.

Run with ``python -m benchmarks.django`` (``--quick`` for a short run,
``--only inprocess`` or ``--only e2e`` for one half).

The app is the smallest that shows where the time goes: one sync view (``GET /``
answers ``hello``) behind two ``MiddlewareMixin`` middleware, each with a
``process_request`` and a ``process_response``, an SQLite database configured (so the
``request_started`` / ``request_finished`` receivers do their usual work), no query.

**In-process** (one fresh subprocess per contender and round, so stock asgiref and
asgibridge never share a process; rounds interleave; median µs per request over
sequential requests driven straight into the ASGI or WSGI callable):

* ``stock ASGIHandler``: ``django.core.asgi.get_asgi_application()`` with asgiref;
* ``stock handler, asgibridge.sync``: the same handler after ``asgibridge.django.install()``,
  i.e. only the sync module swapped (how far swapping alone goes);
* ``asgibridge.django``: ``asgibridge.django.get_asgi_application()``;
* ``asgibridge.django, no hand-off``: the same with its two hand-offs made plain calls on
  the loop: not a valid way to run Django, but the floor of the ASGI side (on Django 4.2,
  whose ``send_response`` closes the response itself, the close keeps its hand-off);
* ``WSGIHandler (floor)``: ``get_wsgi_application()`` called directly, no server, no hand-off.

Hand-offs per request are counted in a separate, untimed pass by wrapping
``SyncToAsync.__call__`` of the sync module the process uses.
Target: asgibridge.django >= 4x faster per request than stock ASGIHandler.

**End to end** (one fresh server per contender and round, ``uvicorn --workers 1`` with
its default HTTP parser, ``--loop asyncio`` unless ``--loop uvloop``, access log off;
``wrk -t1 -c32``; ``--contender NAME`` to run a few):

* ``stock ASGIHandler`` and ``asgibridge.django`` on uvicorn;
* ``WsgiToAsgi thread`` / ``WsgiToAsgi greenlet``: the WSGI app through asgibridge on uvicorn;
* ``a2wsgi``: the WSGI app through ``a2wsgi.WSGIMiddleware`` on uvicorn;
* ``gunicorn gthread``: the WSGI app on gunicorn, 1 worker, 8 threads.

Target: asgibridge.django >= 3x stock's requests per second. Needs ``wrk``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------ the app


def _configure() -> None:
    """Configure Django for the benchmark app (once per process)."""
    from django.conf import settings

    if settings.configured:
        return
    db = os.environ.get("BENCH_DJANGO_DB") or os.path.join(
        tempfile.gettempdir(), f"asgibridge-bench-django-{os.getpid()}.sqlite3"
    )
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-" + "x" * 50,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="benchmarks.django",
        MIDDLEWARE=["benchmarks.django.FirstMiddleware", "benchmarks.django.SecondMiddleware"],
        INSTALLED_APPS=[],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db}},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )


def _middleware_base() -> type:
    from django.utils.deprecation import MiddlewareMixin

    return MiddlewareMixin  # type: ignore[no-any-return]


def __getattr__(name: str) -> Any:
    # The middleware classes and urlpatterns are made on first use, so that importing
    # this module (to run the benchmark) imports no Django.
    if name in ("FirstMiddleware", "SecondMiddleware"):
        base = _middleware_base()

        def process_request(self: Any, request: Any) -> None:
            request.seen = getattr(request, "seen", 0) + 1

        def process_response(self: Any, request: Any, response: Any) -> Any:
            response[f"X-{name}"] = str(request.seen)
            return response

        cls = type(
            name,
            (base,),
            {"process_request": process_request, "process_response": process_response},
        )
        globals()[name] = cls
        return cls
    if name == "urlpatterns":
        from django.http import HttpResponse
        from django.urls import path

        def hello(request: Any) -> Any:
            return HttpResponse(b"hello", content_type="text/plain")

        patterns = [path("", hello)]
        globals()[name] = patterns
        return patterns
    raise AttributeError(name)


def make_stock() -> Any:
    """Django's own ASGI handler, stock asgiref."""
    _configure()
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


def make_swapped() -> Any:
    """Django's own ASGI handler, with asgiref.sync swapped for asgibridge.sync."""
    from asgibridge.django import install

    install()
    return make_stock()


def make_bridge() -> Any:
    """asgibridge.django.get_asgi_application()."""
    _configure()
    from asgibridge.django import get_asgi_application

    return get_asgi_application()


def make_bridge_inline() -> Any:
    """asgibridge.django with its two hand-offs made plain calls on the loop (a floor only).

    Not a valid way to run Django (the view would run on the event loop): it shows what
    the ASGI side costs without any thread hand-off.
    """
    app = make_bridge()
    respond = app._respond

    async def serve(*args: Any) -> Any:
        return respond(*args)

    async def close(response: Any) -> None:
        response.close()

    app._serve_sync = serve
    app._close_sync = close
    return app


def make_wsgi() -> Any:
    """Django's WSGI handler."""
    _configure()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def make_wsgi_thread() -> Any:
    from asgibridge import WsgiToAsgi

    return WsgiToAsgi(make_wsgi(), executor="thread")


def make_wsgi_greenlet() -> Any:
    from asgibridge import WsgiToAsgi

    return WsgiToAsgi(make_wsgi(), executor="greenlet")


def make_a2wsgi() -> Any:
    from a2wsgi import WSGIMiddleware

    return WSGIMiddleware(make_wsgi())


# ------------------------------------------------------------------ in-process child

INPROCESS = {
    "stock ASGIHandler": "make_stock",
    "stock handler, asgibridge.sync": "make_swapped",
    "asgibridge.django": "make_bridge",
    "asgibridge.django, no hand-off": "make_bridge_inline",
    "WSGIHandler (floor)": "make_wsgi",
}


def _count_handoffs() -> list[int]:
    import asgiref.sync

    cls = asgiref.sync.SyncToAsync
    original = cls.__call__
    box = [0]

    async def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        box[0] += 1
        return await original(self, *args, **kwargs)

    cls.__call__ = counting  # type: ignore[method-assign]
    return box


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def _asgi_requests(app: Any, n: int) -> float:
    """Run ``n`` sequential requests; return seconds taken; check each answer."""

    async def one() -> None:
        sent = False
        never = asyncio.Event()
        status = 0
        body = b""

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await never.wait()  # until Django cancels its disconnect listener
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, body
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                body += message.get("body", b"")

        await app(_scope(), receive, send)
        if status != 200 or body != b"hello":
            raise RuntimeError(f"bad answer: {status} {body[:200]!r}")

    t0 = time.perf_counter()
    for _ in range(n):
        await one()
    return time.perf_counter() - t0


def _wsgi_requests(app: Any, n: int) -> float:
    def environ() -> dict[str, Any]:
        return {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "SERVER_NAME": "bench",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "bench",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        if not status.startswith("200"):
            raise RuntimeError(f"bad status {status}")
        return None

    t0 = time.perf_counter()
    for _ in range(n):
        result = app(environ(), start_response)
        try:
            body = b"".join(result)
        finally:
            result.close()
        if body != b"hello":
            raise RuntimeError(f"bad body {body[:200]!r}")
    return time.perf_counter() - t0


def child_inprocess(factory: str, n: int) -> dict[str, float]:
    """In a fresh process: build one contender, warm it up, time ``n`` requests."""
    app = globals()[factory]()
    if factory == "make_wsgi":
        _wsgi_requests(app, max(50, n // 10))
        seconds = _wsgi_requests(app, n)
        return {"us": seconds / n * 1e6, "handoffs": 0.0}

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_asgi_requests(app, max(50, n // 10)))
        seconds = loop.run_until_complete(_asgi_requests(app, n))
        box = _count_handoffs()  # untimed pass
        k = 20
        loop.run_until_complete(_asgi_requests(app, k))
        return {"us": seconds / n * 1e6, "handoffs": box[0] / k}
    finally:
        loop.close()


def run_inprocess(rounds: int, n: int) -> None:
    results: dict[str, list[float]] = {name: [] for name in INPROCESS}
    handoffs: dict[str, float] = {}
    for _ in range(rounds):
        for name, factory in INPROCESS.items():
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.django", "--child", factory, "-n", str(n)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
            data = json.loads(out.stdout.strip().splitlines()[-1])
            results[name].append(data["us"])
            handoffs[name] = data["handoffs"]
    med = {name: statistics.median(v) for name, v in results.items()}
    stock = med["stock ASGIHandler"]
    floor = med["WSGIHandler (floor)"]
    print(
        f"in-process: sync view behind 2 MiddlewareMixin, {n} sequential requests, "
        f"{rounds} round(s), median (min-max)"
    )
    print(f"{'contender':<32}{'µs/req':>9}{'min':>9}{'max':>9}{'hand-offs':>11}{'x stock':>9}")
    for name in INPROCESS:
        v = results[name]
        print(
            f"{name:<32}{med[name]:>9.1f}{min(v):>9.1f}{max(v):>9.1f}"
            f"{handoffs[name]:>11.1f}{stock / med[name]:>9.2f}"
        )
    bridge = med["asgibridge.django"]
    inline = med["asgibridge.django, no hand-off"]
    print(
        f"asgibridge.django is {stock / bridge:.2f}x faster than stock (target >= 4x); "
        f"{bridge - floor:.1f} µs above the WSGIHandler floor, of which "
        f"{bridge - inline:.1f} µs are its {handoffs['asgibridge.django']:.0f} hand-offs"
    )


# ------------------------------------------------------------------ end to end

STOCK = "stock ASGIHandler"
E2E: dict[str, tuple[str, str]] = {
    "stock ASGIHandler": ("uvicorn", "make_stock"),
    "asgibridge.django": ("uvicorn", "make_bridge"),
    "WsgiToAsgi thread": ("uvicorn", "make_wsgi_thread"),
    "WsgiToAsgi greenlet": ("uvicorn", "make_wsgi_greenlet"),
    "a2wsgi": ("uvicorn", "make_a2wsgi"),
    "gunicorn gthread": ("gunicorn", "make_wsgi"),
}


def _server_cmd(kind: str, factory: str, port: int, loop: str = "asyncio") -> list[str]:
    from . import _harness

    if kind == "uvicorn":
        return _harness.uvicorn_cmd(
            f"benchmarks.django:{factory}",
            port,
            loop=loop,
            extra=("--factory", "--lifespan", "off"),
        )
    return _harness.gunicorn_gthread_cmd(
        f"benchmarks.django:{factory}()",
        f"127.0.0.1:{port}",
        threads=8,
        extra=("--no-control-socket",),
    )


def run_e2e(
    rounds: int, seconds: float, connections: int, loop: str = "asyncio", only: Any = None
) -> None:
    from . import _harness

    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    contenders = {k: v for k, v in E2E.items() if not only or k in only or k == STOCK}
    rps: dict[str, list[float]] = {name: [] for name in contenders}
    bad: dict[str, int] = dict.fromkeys(contenders, 0)
    log = Path(tempfile.gettempdir()) / "asgibridge-django-e2e.log"
    log.write_bytes(b"")
    gunicorn_args = _gunicorn_supports_no_control_socket()
    for _ in range(rounds):
        for name, (kind, factory) in contenders.items():
            port = _harness.free_port()
            cmd = _server_cmd(kind, factory, port, loop)
            if kind == "gunicorn" and not gunicorn_args:
                cmd.remove("--no-control-socket")
            with log.open("ab") as err:
                err.write(f"==== {name}\n".encode())
                err.flush()
                proc = subprocess.Popen(
                    cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=err
                )
                try:
                    _harness.wait_ready(port, proc, name)
                    _harness.wrk(port, 1, connections)  # warm-up
                    r, n, e = _harness.wrk(port, seconds, connections)
                finally:
                    _harness.stop(proc)
            rps[name].append(r)
            bad[name] += n + e
    med = {name: statistics.median(v) for name, v in rps.items()}
    stock = med[STOCK]
    print(
        f"end to end: uvicorn --workers 1 --loop {loop} (gunicorn: 1 worker, 8 threads), "
        f"wrk -t1 -c{connections} -d{seconds:g}s, {rounds} round(s), median req/s"
    )
    print(f"{'contender':<24}{'req/s':>9}{'min':>9}{'max':>9}{'bad':>6}{'x stock':>9}")
    for name in contenders:
        v = rps[name]
        print(
            f"{name:<24}{med[name]:>9.0f}{min(v):>9.0f}{max(v):>9.0f}{bad[name]:>6}"
            f"{med[name] / stock:>9.2f}"
        )
    print(
        f"asgibridge.django: {med['asgibridge.django'] / stock:.2f}x stock's throughput "
        f"(target >= 3x); server logs: {log}"
    )


def _gunicorn_supports_no_control_socket() -> bool:
    from importlib.metadata import version

    parts = tuple(int(p) for p in version("gunicorn").split(".")[:2] if p.isdigit())
    return parts >= (25, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round, fewer requests")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("-n", type=int, default=None, help="requests per in-process round")
    parser.add_argument("--seconds", type=float, default=None, help="wrk duration")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", choices=["inprocess", "e2e"], default=None)
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="uvicorn's event loop for the end-to-end half",
    )
    parser.add_argument(
        "--contender",
        action="append",
        help="end to end: run only these contenders (stock always runs, as the reference)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_inprocess(args.child, args.n or 2000)))
        return
    rounds = args.rounds or (1 if args.quick else 3)
    if args.only in (None, "inprocess"):
        run_inprocess(rounds, args.n or (500 if args.quick else 2000))
    if args.only in (None, "e2e"):
        run_e2e(
            rounds,
            args.seconds or (2.0 if args.quick else 5.0),
            args.connections,
            args.loop,
            args.contender,
        )


if __name__ == "__main__":
    main()
