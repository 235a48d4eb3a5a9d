"""AsgiToWsgi on real WSGI servers: waitress, gunicorn (gthread, a subprocess) and wsgiref.

A Starlette app and a FastAPI app, each wrapped in AsgiToWsgi, are served on
127.0.0.1 port 0 and driven with httpx. Under wsgiref the bridge is also
wrapped in ``wsgiref.validate``. gunicorn imports this module from its
subprocess, through :func:`gunicorn_app`.

Apps coordinate with the tests through long-polling endpoints (an
``asyncio.Event`` per key, awaited with a timeout), so no test sleeps to
wait for the server; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from asgibridge.asgi import AsgiToWsgi
from tests.support.net import free_port as _free_port
from tests.support.wsgi_servers import (
    _NO_CONTROL_SOCKET,
    Served,
    gunicorn_server,
    waitress_server,
    wsgiref_server,
)

TESTS = Path(__file__).resolve().parent
WAIT = 10.0  # bound for every long poll and client request

# ------------------------------------------------------------- the applications
# One process-wide registry per worker, for coordination through HTTP.

_events: dict[str, asyncio.Event] = {}
_status: dict[str, str] = {}


def _event(key: str) -> asyncio.Event:
    event = _events.get(key)
    if event is None:
        event = _events[key] = asyncio.Event()
    return event


async def _long_poll(key: str) -> bool:
    try:
        await asyncio.wait_for(_event(key).wait(), WAIT)
    except asyncio.TimeoutError:
        return False
    return True


def _record(line: str) -> None:
    path = os.environ.get("ASGI_TEST_RECORD")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    if os.environ.get("ASGI_TEST_STARTUP_FAIL"):
        raise RuntimeError("startup boom")
    _record(f"startup {os.getpid()}")
    yield {"token": "lifespan-token", "pid": os.getpid()}
    _record(f"shutdown {os.getpid()}")


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def stream(request: Request) -> Response:
    count = int(request.query_params.get("n", "5"))

    async def lines() -> AsyncIterator[bytes]:
        for n in range(count):
            yield b"%d\n" % n
            await asyncio.sleep(0)

    return StreamingResponse(lines(), media_type="text/plain")


async def forever(request: Request) -> Response:
    key = request.path_params["key"]

    async def ticks() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"tick " * 200 + b"\n"
                await asyncio.sleep(0.005)
        except asyncio.CancelledError:
            _status[key] = "cancelled"
            raise
        finally:
            _status.setdefault(key, "finished")
            _event(f"{key}-closed").set()

    return StreamingResponse(ticks(), media_type="text/plain")


async def closed(request: Request) -> Response:
    key = request.path_params["key"]
    if not await _long_poll(f"{key}-closed"):
        return PlainTextResponse("still running", status_code=504)
    return PlainTextResponse(_status[key])


async def _background(key: str) -> None:
    if await _long_poll(f"{key}-release"):
        _event(f"{key}-done").set()


async def background(request: Request) -> Response:
    key = request.path_params["key"]
    return PlainTextResponse("queued", background=BackgroundTask(_background, key))


async def release(request: Request) -> Response:
    _event(f"{request.path_params['key']}-release").set()
    return PlainTextResponse("released")


async def background_done(request: Request) -> Response:
    done = await _long_poll(f"{request.path_params['key']}-done")
    return PlainTextResponse("done" if done else "not done", status_code=200 if done else 504)


async def state(request: Request) -> Response:
    return JSONResponse(
        {"token": request.state.token, "startup_pid": request.state.pid, "pid": os.getpid()}
    )


async def boom(request: Request) -> Response:
    raise RuntimeError(f"boom {request.path_params['marker']}")


async def midboom(request: Request) -> Response:
    marker = request.path_params["marker"]

    async def body() -> AsyncIterator[bytes]:
        yield b"partial " * 1000
        await asyncio.sleep(0.05)  # the first chunk goes out before the error
        raise RuntimeError(f"midboom {marker}")

    return StreamingResponse(body(), media_type="text/plain")


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("s", "0.05")))
    return JSONResponse({"pid": os.getpid(), "startup_pid": request.state.pid})


ROUTES = [
    ("GET", "/hello", hello),
    ("POST", "/echo", echo),
    ("GET", "/stream", stream),
    ("GET", "/forever/{key}", forever),
    ("GET", "/closed/{key}", closed),
    ("POST", "/bg/{key}", background),
    ("POST", "/release/{key}", release),
    ("GET", "/bg-done/{key}", background_done),
    ("GET", "/state", state),
    ("GET", "/boom/{marker}", boom),
    ("GET", "/midboom/{marker}", midboom),
    ("GET", "/slow", slow),
]


def starlette_app() -> Starlette:
    return Starlette(
        routes=[Route(path, fn, methods=[method]) for method, path, fn in ROUTES],
        lifespan=_lifespan,
    )


def fastapi_app() -> FastAPI:
    app = FastAPI(lifespan=_lifespan)

    @app.get("/hello")
    async def fa_hello() -> Response:
        return PlainTextResponse("hello")

    @app.post("/echo")
    async def fa_echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream")

    @app.post("/bg/{key}")
    async def fa_background(key: str, tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(_background, key)
        return {"status": "queued"}

    @app.get("/state")
    async def fa_state(request: Request) -> dict[str, Any]:
        return {"token": request.state.token, "startup_pid": request.state.pid, "pid": os.getpid()}

    @app.get("/boom/{marker}")
    async def fa_boom(marker: str) -> None:
        raise RuntimeError(f"boom {marker}")

    taken = {"/hello", "/echo", "/bg/{key}", "/state", "/boom/{marker}"}
    for method, path, fn in ROUTES:  # the rest are plain Starlette endpoints
        if path not in taken:
            app.add_api_route(path, fn, methods=[method], include_in_schema=False)
    return app


def build(framework: str) -> Any:
    return starlette_app() if framework == "starlette" else fastapi_app()


def gunicorn_app(framework: str, start: bool = False) -> AsgiToWsgi:
    """The WSGI app gunicorn loads (``test_asgi_servers:gunicorn_app('fastapi')``)."""
    bridge = AsgiToWsgi(build(framework))
    if start:  # with --preload this runs lifespan startup in the gunicorn master
        bridge.start()
    return bridge


# ---------------------------------------------------------------------- fixtures

SERVERS = ["waitress", "gunicorn", "wsgiref"]
FRAMEWORKS = ["starlette", "fastapi"]


@pytest.fixture(
    scope="module",
    params=[(s, f) for s in SERVERS for f in FRAMEWORKS],
    ids=[f"{s}-{f}" for s in SERVERS for f in FRAMEWORKS],
)
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    server, framework = request.param
    if server == "gunicorn":
        with gunicorn_server(f"test_asgi_servers:gunicorn_app({framework!r})", chdir=TESTS) as s:
            yield s
        return
    bridge = AsgiToWsgi(build(framework))
    try:
        if server == "waitress":
            with waitress_server(bridge) as s:
                yield s
        else:
            with wsgiref_server(validator(bridge)) as s:
                yield s
    finally:
        bridge.close(timeout=WAIT)


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=WAIT) as c:
        yield c


def wait_for_log(served: Served, pattern: str) -> str:
    """The server log once it matches ``pattern``.

    The app logs after its 500 has been sent, and a subprocess writes its
    log when it likes, so this polls; bounded by WAIT.
    """
    deadline = time.monotonic() + WAIT
    while True:
        text = served.log()
        if re.search(pattern, text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} not in the {served.name} log:\n{text[-3000:]}")
        time.sleep(0.02)


# ------------------------------------------------------------------------- tests


def test_get(client: httpx.Client) -> None:
    response = client.get("/hello")
    assert (response.status_code, response.text) == (200, "hello")


def test_post_echo_of_1_mb(client: httpx.Client) -> None:
    data = os.urandom(1 << 20)
    response = client.post("/echo", content=data)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(data).digest()


def test_a3_chunked_upload(served: Served, client: httpx.Client) -> None:
    if served.name == "wsgiref":
        pytest.skip("wsgiref does not decode chunked request bodies")
    pieces = [os.urandom(16384) for _ in range(40)]

    def body() -> Iterator[bytes]:
        yield from pieces  # no length: httpx sends Transfer-Encoding: chunked

    response = client.post("/echo", content=body())
    assert response.status_code == 200
    assert response.content == b"".join(pieces)


def test_streaming_response(client: httpx.Client) -> None:
    with client.stream("GET", "/stream", params={"n": 200}) as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
    assert lines == [str(n) for n in range(200)]


def test_a9_background_tasks_run_after_the_response(client: httpx.Client) -> None:
    key = uuid.uuid4().hex
    # The background task waits for /release: the response must not wait for it.
    assert client.post(f"/bg/{key}").status_code == 200
    assert client.post(f"/release/{key}").status_code == 200
    done = client.get(f"/bg-done/{key}")
    assert (done.status_code, done.text) == (200, "done")


def test_a1_lifespan_state_reaches_request_state(served: Served, client: httpx.Client) -> None:
    body = client.get("/state").json()
    assert body["token"] == "lifespan-token"
    assert body["startup_pid"] == body["pid"]
    if served.proc is not None:
        assert body["pid"] != served.proc.pid  # ran in the worker, not the master


def test_a6_exceptions_are_logged_with_traceback(served: Served, client: httpx.Client) -> None:
    marker = uuid.uuid4().hex
    response = client.get(f"/boom/{marker}")
    assert response.status_code == 500
    text = wait_for_log(served, f"RuntimeError: boom {marker}")
    before = text[: text.index(f"RuntimeError: boom {marker}")]
    assert "Traceback (most recent call last)" in before
    assert "Exception in ASGI application" in before


def test_a6_exception_mid_body_is_logged_exactly_once(served: Served, client: httpx.Client) -> None:
    """The bridge re-raises to the server, which logs it; the bridge does not log it again."""
    if served.name == "wsgiref":
        pytest.skip("wsgiref prints tracebacks to stderr, which Served.log() does not capture")
    marker = uuid.uuid4().hex
    with pytest.raises(httpx.HTTPError):  # the server aborts the response
        with client.stream("GET", f"/midboom/{marker}") as response:
            assert response.status_code == 200
            for _ in response.iter_raw():
                pass
    text = wait_for_log(served, f"RuntimeError: midboom {marker}")
    time.sleep(0.3)  # anything logged twice would be written by now
    text = served.log()
    assert text.count(f"RuntimeError: midboom {marker}") == 1, text[-3000:]
    before = text[: text.index(f"RuntimeError: midboom {marker}")]
    assert "Traceback (most recent call last)" in before


def test_a4_client_disconnect_cancels_the_asgi_task(client: httpx.Client) -> None:
    key = uuid.uuid4().hex
    with client.stream("GET", f"/forever/{key}") as response:
        assert response.status_code == 200
        got = 0
        for chunk in response.iter_raw():
            got += len(chunk)
            if got > 20000:
                break
    # Leaving the block closed the connection mid-body.
    outcome = client.get(f"/closed/{key}")
    assert (outcome.status_code, outcome.text) == (200, "cancelled")


def test_fifty_concurrent_requests(served: Served) -> None:
    async def main() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with httpx.AsyncClient(base_url=served.url, timeout=WAIT, limits=limits) as c:
            return await asyncio.gather(*(c.get("/slow") for _ in range(50)))

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * 50
    assert len({r.json()["pid"] for r in responses}) == 1


# --------------------------------------------------------------- process life


def _pids(lines: list[str], word: str) -> set[int]:
    return {int(line.split()[1]) for line in lines if line.startswith(word + " ")}


def test_a2_fork_safe_gunicorn_preload(tmp_path: Path) -> None:
    """The master starts the bridge (loop and lifespan) before forking two workers.

    Each worker must start a fresh loop and run startup itself, answer
    requests, and run shutdown when it exits. Sync workers take one request
    at a time, so concurrent slow requests are spread over both.
    """
    record = tmp_path / "lifespan.log"
    with gunicorn_server(
        "test_asgi_servers:gunicorn_app('starlette', start=True)",
        chdir=TESTS,
        workers=2,
        worker_class="sync",
        preload=True,
        env={"ASGI_TEST_RECORD": str(record)},
    ) as served:
        assert served.proc is not None
        master = served.proc.pid
        seen: dict[int, int] = {}

        async def burst() -> list[dict[str, int]]:
            async with httpx.AsyncClient(base_url=served.url, timeout=WAIT) as c:
                responses = await asyncio.gather(
                    *(c.get("/slow", params={"s": "0.3"}) for _ in range(4))
                )
            assert [r.status_code for r in responses] == [200] * 4
            return [r.json() for r in responses]

        for _ in range(10):  # bounded: each round is one burst of concurrent requests
            for body in asyncio.run(burst()):
                seen[body["pid"]] = body["startup_pid"]
            if len(seen) == 2:
                break
        assert len(seen) == 2, f"only worker(s) {sorted(seen)} answered"
        assert all(pid == startup for pid, startup in seen.items())
        assert master not in seen
        assert served.stop() == 0
        lines = record.read_text().splitlines()
        assert _pids(lines, "startup") == {master, *seen}  # master (preload) and each worker
        assert _pids(lines, "shutdown") == {master, *seen}  # at worker exit and master exit


def test_a1_failed_startup_answers_500_and_the_server_log_shows_it_once() -> None:
    with gunicorn_server(
        "test_asgi_servers:gunicorn_app('fastapi')",
        chdir=TESTS,
        env={"ASGI_TEST_STARTUP_FAIL": "1"},
    ) as served:
        with httpx.Client(base_url=served.url, timeout=WAIT) as c:
            codes = [c.get("/hello").status_code for _ in range(3)]
        assert codes == [500, 500, 500]
        text = wait_for_log(served, "RuntimeError: startup boom")
        assert text.count("RuntimeError: startup boom") == 1
        assert "ASGI lifespan startup failed" in text
        assert "Traceback (most recent call last)" in text


# ------------------------------------------------------- A11 hostile headers, raw

_HOSTILE_HEADERS: dict[str, tuple[bytes, bytes]] = {
    "colon": (b"x:a", b"zq1"),
    "space": (b"x a", b"zq2"),
    "nul-name": (b"x\x00", b"zq3"),
    "crlf-name": (b"x\r\nx-evil", b"zq4"),
    "vt-value": (b"x-a", b"zq\x0bb"),
    "del-value": (b"x-a", b"zq\x7fb"),
    "crlf-value": (b"x-a", b"zq\r\nx-evil: 1"),
    "nul-value": (b"x-a", b"zq\x00b"),
}


async def _hostile(scope: dict[str, Any], receive: Any, send: Any) -> None:
    name, value = _HOSTILE_HEADERS[scope["path"].strip("/")]
    headers = [(b"content-type", b"text/plain"), (name, value)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"app body"})


def _raw_get(url: str, path: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=WAIT) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
            if len(data) > 1 << 20:  # pragma: no cover - bounded
                break
    return data


@pytest.mark.parametrize("case", sorted(_HOSTILE_HEADERS))
def test_a11_hostile_header_is_a_500_and_never_reaches_the_wire_on_waitress(case: str) -> None:
    """waitress writes whatever start_response is given: the bridge must refuse it first."""
    bridge = AsgiToWsgi(_hostile, lifespan="off")
    try:
        with waitress_server(bridge) as served:
            data = _raw_get(served.url, f"/{case}")
            text = wait_for_log(served, "response start the WSGI server cannot use")
    finally:
        bridge.close(timeout=WAIT)
    head = data.partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 500 "), data[:300]
    name = _HOSTILE_HEADERS[case][0]
    assert b"app body" not in data
    assert b"evil" not in data
    assert name not in head.lower() or name == b"x-a"
    assert b"zq" not in data
    assert text.count("response start the WSGI server cannot use") == 1
    assert text.count("Traceback (most recent call last)") == 1


# ------------------------------------------------------------ A12 lifespan auto


class _BareStreaming:
    """A new Starlette StreamingResponse per call, used as the whole app."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def body() -> AsyncIterator[bytes]:
            yield b"streamed"

        await StreamingResponse(body(), media_type="text/plain")(scope, receive, send)


def test_a12_bare_streaming_response_served_on_waitress_without_lifespan() -> None:
    bridge = AsgiToWsgi(_BareStreaming())  # lifespan="auto"
    try:
        with waitress_server(bridge) as served:
            with httpx.Client(base_url=served.url, timeout=WAIT) as c:
                started = time.monotonic()
                responses = [c.get("/") for _ in range(3)]
                elapsed = time.monotonic() - started
            text = served.log()
    finally:
        bridge.close(timeout=WAIT)
    assert [(r.status_code, r.text) for r in responses] == [(200, "streamed")] * 3
    assert elapsed < 2.0, elapsed
    assert "does not support the lifespan protocol" in text
    assert "ERROR" not in text and "Traceback" not in text


# ------------------------------------------- A1 shutdown when a server is signalled


def _with_default_sigint(cmd: list[str]) -> list[str]:
    """``cmd``, exec'd with SIGINT and SIGQUIT back at their default dispositions.

    A shell without job control starts background commands with both
    ignored, and children inherit that (Python then installs no
    KeyboardInterrupt handler): run that way, as some CI runners do, the
    server under test never saw the Ctrl+C this test sends, and the test
    failed every time. Resetting them before ``exec`` keeps the same
    process, so the signal still reaches the server.
    """
    reset = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "signal.signal(signal.SIGQUIT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    )
    return [sys.executable, "-c", reset, *cmd]


_SIGNAL_APP = """
import os
import signal
import sys

from asgibridge import AsgiToWsgi

RECORD = os.environ["ASGI_TEST_RECORD"]


def _record(word):
    with open(RECORD, "a") as f:
        f.write(word + "\\n")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        _record("startup")
        await send({"type": "lifespan.startup.complete"})
        await receive()
        _record("shutdown")
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


application = AsgiToWsgi(app)

if __name__ == "__main__":  # the recipe docs/asgi.md gives for waitress and SIGTERM
    import waitress

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        waitress.serve(application, host="127.0.0.1", port=int(sys.argv[1]))
    finally:
        application.close()
"""


@pytest.mark.parametrize(
    ("server", "sig", "shutdown"),
    [
        pytest.param("waitress-serve", "SIGINT", True, id="waitress-sigint"),
        pytest.param("waitress-serve", "SIGTERM", False, id="waitress-sigterm-skips-atexit"),
        pytest.param("waitress-script", "SIGTERM", True, id="waitress-sigterm-recipe"),
        pytest.param("gunicorn", "SIGTERM", True, id="gunicorn-sigterm"),
        pytest.param("gunicorn", "SIGQUIT", True, id="gunicorn-sigquit"),
    ],
)
def test_a1_lifespan_shutdown_when_the_server_is_signalled(
    tmp_path: Path, server: str, sig: str, shutdown: bool
) -> None:
    """What docs/asgi.md says each server does with each signal, checked on the real thing."""
    import signal as signals
    import subprocess

    (tmp_path / "signal_app.py").write_text(_SIGNAL_APP)
    record = tmp_path / "record.txt"
    port = _free_port()
    if server == "waitress-serve":
        cmd = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}"]
        cmd.append("signal_app:application")
    elif server == "waitress-script":
        cmd = [sys.executable, "signal_app.py", str(port)]
    else:
        cmd = [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-k", "gthread"]
        cmd += ["--graceful-timeout", "5", "signal_app:application"]
        cmd[5:5] = _NO_CONTROL_SOCKET
    env = dict(os.environ, ASGI_TEST_RECORD=str(record), PYTHONPATH=str(tmp_path))
    proc = subprocess.Popen(
        _with_default_sigint(cmd),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=2.0).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        proc.send_signal(getattr(signals, sig))
        proc.wait(timeout=WAIT)
    finally:
        if proc.poll() is None:  # pragma: no cover - reported by the assertions
            proc.kill()
            proc.wait(timeout=WAIT)
    words = record.read_text().split()
    assert words.count("startup") == 1
    assert words.count("shutdown") == (1 if shutdown else 0), words
