"""The Django example project, served for real, driven by httpx over loopback.

``examples/django_project`` runs on uvicorn in a subprocess (Django's settings are
process-wide), on a listening socket made here on 127.0.0.1 port 0 and passed down
as a file descriptor. It is served three ways:

* ``asgi``: Django's ASGI handler on asgibridge (``asgibridge.django``);
* ``wsgi-thread`` / ``wsgi-greenlet``: Django's WSGI handler through ``WsgiToAsgi``.

One server per way for the whole module; the database is migrated once into a
temporary directory and copied for each server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT

pytest.importorskip("django")
httpx = pytest.importorskip("httpx")

PROJECT = ROOT / "examples" / "django_project"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
MODES = ["asgi", "wsgi-thread", "wsgi-greenlet"]


def _env(db: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(PROJECT), env.get("PYTHONPATH", "")])
    env["DJANGO_SETTINGS_MODULE"] = "demo_site.settings"
    env["DEMO_DB"] = str(db)
    env["DEMO_FAST_HASHER"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("django") / "template.sqlite3"
    subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), "migrate", "--verbosity", "0"],
        env=_env(db),
        check=True,
        timeout=60,
        capture_output=True,
    )
    return db


class Server:
    """A running ``serve.py`` subprocess and a client bound to it."""

    def __init__(self, mode: str, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.mode = mode
        self.proc = proc
        self.url = url
        self.log = log

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)

    def handoffs(self) -> int:
        r = httpx.get(self.url + "/__handoffs__", timeout=10.0)
        return int(r.json()["handoffs"])


def _start(mode: str, db: Path, log: Path, **env: str) -> Iterator[Server]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.set_inheritable(True)
    port = listener.getsockname()[1]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(PROJECT / "serve.py"),
                mode,
                "--fd",
                str(listener.fileno()),
                "--count-handoffs",
                "--loop",
                "asyncio",
            ],
            env=_env(db, **env),
            pass_fds=(listener.fileno(),),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    listener.close()
    server = Server(mode, proc, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # bounded: START_TIMEOUT
            try:
                server.handoffs()
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"serve.py {mode} did not start: {log.read_text(errors='replace')}"
                    ) from None
                time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:  # pragma: no cover - reported by the kill
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)


@pytest.fixture(scope="module", params=MODES)
def server(
    request: pytest.FixtureRequest, migrated_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    mode = request.param
    d = tmp_path_factory.mktemp(mode)
    db = d / "db.sqlite3"
    shutil.copy(migrated_db, db)
    yield from _start(mode, db, d / "server.log")


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def _csrf(client: httpx.Client) -> str:
    r = client.get("/csrf/")
    assert r.status_code == 200
    token = r.json()["token"]
    assert client.cookies.get("csrftoken")
    return str(token)


# ------------------------------------------------------------------ every way


def test_u7_sync_view_sees_no_loop_and_runs_on_its_middleware_thread(
    server: Server, client: httpx.Client
) -> None:
    r = client.get("/sync/")
    assert r.status_code == 200, r.text
    assert r.json() == {"kind": "sync", "loop_running": False, "middleware_thread": True}
    assert r.headers["x-sync-middleware"] == "same-thread"
    assert r.headers["x-sync-middleware-loop"] == "False"
    # The async-capable middleware runs on the loop under ASGI, in sync mode under WSGI.
    assert r.headers["x-served-by"] == ("async" if server.mode == "asgi" else "sync")


def test_request_signals_fire_in_order_on_the_view_thread(
    server: Server, client: httpx.Client
) -> None:
    """request_started, then the view, then request_finished (after the body is sent)."""
    assert client.get("/sync/").status_code == 200
    deadline = time.monotonic() + 5.0
    while True:  # bounded: request_finished may land just after the client has the body
        events = client.get("/events/").json()["events"]
        starts = [i for i, e in enumerate(events) if e[0] == "started" and e[2] == "/sync/"]
        assert starts, events
        tail = events[starts[-1] :]
        if any(e[0] == "finished" for e in tail):
            break
        assert time.monotonic() < deadline, events
        time.sleep(0.02)
    if server.mode == "wsgi-greenlet":
        # Every request runs on the loop's thread, so /events/ may interleave.
        kinds = [e[0] for e in tail]
        assert kinds.index("started") < kinds.index("view") < kinds.index("finished"), tail
    else:
        # The thread that ran the signal runs the view and the close, and nothing
        # else in between.
        mine = [e[0] for e in tail if e[1] == tail[0][1]]
        assert mine[:3] == ["started", "view", "finished"], tail


def test_async_view_runs_on_a_loop(client: httpx.Client) -> None:
    r = client.get("/async/")
    assert r.status_code == 200, r.text
    assert r.json() == {"kind": "async", "loop_running": True}
    assert r.headers["x-sync-middleware"] == "same-thread"


def test_orm_write_then_read_sync_and_async(server: Server, client: httpx.Client) -> None:
    token = _csrf(client)
    text = f"note from {server.mode}"
    r = client.post("/notes/", data={"text": text}, headers={"X-CSRFToken": token})
    assert r.status_code == 201, r.text
    assert r.json()["text"] == text
    r = client.get("/notes/")
    assert r.status_code == 200, r.text
    assert text in r.json()["notes"]
    r = client.get("/anotes/")
    assert r.status_code == 200, r.text
    assert text in r.json()["notes"]
    assert r.json()["count"] == len(r.json()["notes"])


def test_csrf_post_without_token_is_refused(client: httpx.Client) -> None:
    _csrf(client)
    r = client.post("/notes/", data={"text": "no token"})
    assert r.status_code == 403
    assert "no token" not in client.get("/notes/").json()["notes"]


def test_login_and_session_cookie_round_trip(client: httpx.Client) -> None:
    token = _csrf(client)
    assert client.get("/whoami/").json() == {"user": None}
    r = client.post(
        "/login/",
        data={"username": "alice", "password": "wrong"},
        headers={"X-CSRFToken": token},
    )
    assert r.status_code == 403
    r = client.post(
        "/login/",
        data={"username": "alice", "password": "wonderland"},
        headers={"X-CSRFToken": token},
    )
    assert r.status_code == 200, r.text
    assert client.cookies.get("sessionid")
    assert client.get("/whoami/").json() == {"user": "alice"}
    assert client.get("/session/").json() == {"visits": 1}
    assert client.get("/session/").json() == {"visits": 2}
    # A fresh client has no session.
    with httpx.Client(base_url=str(client.base_url), timeout=10.0) as other:
        assert other.get("/whoami/").json() == {"user": None}


def test_streaming_view(client: httpx.Client) -> None:
    with client.stream("GET", "/stream/") as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers
        body = b"".join(r.iter_bytes())
    assert body == b"".join(f"chunk {i}\n".encode() for i in range(5))


def test_c22_several_cookies_reach_the_client(client: httpx.Client) -> None:
    r = client.get("/cookies/")
    assert r.status_code == 200, r.text
    values = r.headers.get_list("set-cookie")
    assert len(values) == 3, values
    assert all(v == v.strip() for v in values)
    by_name = {v.split("=", 1)[0]: v for v in values}
    assert set(by_name) == {"plain", "secure_one", "path_one"}
    assert "HttpOnly" in by_name["secure_one"]
    assert "SameSite=Strict" in by_name["secure_one"]
    assert "Path=/cookies/" in by_name["path_one"]
    assert r.cookies.get("plain") == "1"


def test_errors_404_and_500(server: Server, client: httpx.Client) -> None:
    r = client.get("/no/such/page/")
    assert r.status_code == 404
    assert r.headers["x-sync-middleware"] == "same-thread"
    r = client.get("/boom/")
    assert r.status_code == 500
    assert "boom, on purpose" not in r.text  # DEBUG is off
    assert r.headers["x-sync-middleware"] == "same-thread"
    deadline = time.monotonic() + 5.0
    while "Internal Server Error: /boom/" not in server.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, server.log.read_text(errors="replace")
        time.sleep(0.02)


# ------------------------------------------------------------------ hand-offs


def _handoffs_for(server: Server, client: httpx.Client, path: str) -> int:
    before = server.handoffs()
    r = client.get(path)
    assert r.status_code == 200, r.text
    return server.handoffs() - before


@pytest.fixture(scope="module")
def asgi_sync_middleware_only(
    migrated_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The ASGI way with only sync middleware (the async-capable one switched off)."""
    d = tmp_path_factory.mktemp("asgi-sync-only")
    db = d / "db.sqlite3"
    shutil.copy(migrated_db, db)
    yield from _start("asgi", db, d / "server.log", DEMO_ASYNC_MIDDLEWARE="0")


def test_sync_view_takes_two_handoffs_behind_sync_middleware(
    asgi_sync_middleware_only: Server,
) -> None:
    """Six MiddlewareMixin middleware: Django's own handler takes 15 hand-offs here."""
    with asgi_sync_middleware_only.client() as client:
        client.get("/sync/")  # warm up: the first request builds lazy state
        counts = [_handoffs_for(asgi_sync_middleware_only, client, "/sync/") for _ in range(5)]
        assert counts == [2] * 5
        assert _handoffs_for(asgi_sync_middleware_only, client, "/cookies/") == 2
        r = client.get("/sync/")
        assert r.json() == {"kind": "sync", "loop_running": False, "middleware_thread": True}


def test_sync_view_handoffs_every_way(server: Server) -> None:
    """ASGI: three, as an async-capable middleware runs on the loop between the signal
    and the view. WSGI through WsgiToAsgi: none, the whole cycle runs on one worker."""
    expected = 3 if server.mode == "asgi" else 0
    with server.client() as client:
        client.get("/sync/")
        assert [_handoffs_for(server, client, "/sync/") for _ in range(3)] == [expected] * 3


def test_handoff_counter_sees_djangos_own_calls(server: Server) -> None:
    """An async view goes through Django's own code; its sync_to_async calls are counted."""
    with server.client() as client:
        client.get("/async/")
        n = _handoffs_for(server, client, "/async/")
    if server.mode == "asgi":
        # Django's own count: the signal, 2 for each of the 6 MiddlewareMixin, the close.
        assert n == 1 + 2 * 6 + 1
    else:
        assert n == 0  # WSGI: Django runs the async view with async_to_sync, no sync_to_async


def test_server_log_has_only_the_expected_errors(server: Server) -> None:
    """Runs after the tests above: the only traceback logged is /boom/'s."""
    with server.client() as client:
        client.get("/sync/")
    text = server.log.read_text(errors="replace")
    assert text.count("Traceback") == 1, text
    assert "RuntimeError: boom, on purpose" in text
    for bad in ("Exception in ASGI application", "SynchronousOnlyOperation", "Unhandled"):
        assert bad not in text, text


def _run_prints_ok(code: str) -> None:
    """Run ``code`` in a fresh Python (no database); it must exit 0 and print only ``ok``."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(Path("unused.sqlite3")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


_IN_PROCESS = """
import asyncio
import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

def hello(request):
    return HttpResponse(b"hi")

urlpatterns = [path("", hello)]
settings.configure(
    ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="k" * 50,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
)
from asgibridge.django import ASGIHandler, get_asgi_application, install
install()
import asgiref.sync

calls = []
original = asgiref.sync.SyncToAsync.__call__
async def counting(self, *a, **k):
    calls.append(getattr(self.func, "__qualname__", repr(self.func)))
    return await original(self, *a, **k)
asgiref.sync.SyncToAsync.__call__ = counting

class Custom(ASGIHandler):
    async def get_response_async(self, request):
        response = await super().get_response_async(request)
        response["X-Custom"] = "yes"
        return response

async def get(app):
    sent, done = [], asyncio.Event()
    async def receive():
        if not sent:
            sent.append(None)
            return {"type": "http.request", "body": b""}
        await done.wait()
        return {"type": "http.disconnect"}
    out = []
    async def send(message):
        out.append(message)
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"",
             "headers": [(b"host", b"x")], "server": ("x", 80)}
    await app(scope, receive, send)
    headers = dict(out[0]["headers"])
    return out[0]["status"], headers, b"".join(m.get("body", b"") for m in out[1:])

async def main():
    plain = get_asgi_application()
    custom = Custom()
    for app, handoffs, tagged in ((plain, 2, False), (custom, 5, True)):
        del calls[:]
        status, headers, body = await get(app)
        assert (status, body) == (200, b"hi"), (status, body)
        assert (b"X-Custom" in headers) == tagged, headers
        assert len(calls) == handoffs, (type(app).__name__, calls)
    print("ok")

asyncio.run(main())
"""


def test_subclass_overriding_get_response_async_takes_djangos_path() -> None:
    """The fast path skips get_response_async, so a subclass overriding it must not take it.

    One MiddlewareMixin: the fast path takes 2 hand-offs, Django's own path 5 (signal,
    process_request, view, process_response, close).
    """
    _run_prints_ok(_IN_PROCESS)


_DISCONNECT = """
import asyncio, threading, time
import django
from django.conf import settings
from django.core import signals
from django.http import HttpResponse
from django.urls import path

def slow(request):
    time.sleep(0.3)
    events.append(("view", threading.get_ident()))
    return HttpResponse(b"late")

urlpatterns = [path("", slow)]
settings.configure(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="k" * 50,
                   MIDDLEWARE=[])
events = []
from asgibridge.django import get_asgi_application
app = get_asgi_application()
signals.request_started.connect(lambda **k: events.append(("started", threading.get_ident())),
                                weak=False)
signals.request_finished.connect(lambda **k: events.append(("finished", threading.get_ident())),
                                 weak=False)

async def main():
    first = []
    async def receive():
        if not first:
            first.append(None)
            return {"type": "http.request", "body": b""}
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}
    out = []
    async def send(message):
        out.append(message["type"])
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"",
             "headers": [(b"host", b"x")], "server": ("x", 80)}
    await asyncio.wait_for(app(scope, receive, send), 10)
    kinds = [e[0] for e in events]
    assert kinds == ["started", "view", "finished"], events
    assert len({e[1] for e in events}) == 1, events
    if django.VERSION >= (5, 0):
        assert out == [], out  # Django 5+: the response of a gone client is not sent
    print("ok")

asyncio.run(main())
"""


def test_client_gone_during_a_sync_view() -> None:
    """Django 5+: the view finishes on its thread, nothing is sent, request_finished once."""
    _run_prints_ok(_DISCONNECT)


def test_install_rebinds_names_imported_before_it() -> None:
    """install(): Django modules imported first get asgibridge's objects; asgiref's own don't."""
    code = """
import asgiref.wsgi
import django.core.handlers.base as base
import django.utils.deprecation as deprecation
import asgibridge.sync as bridge
from asgibridge.django import install
assert base.sync_to_async is not bridge.sync_to_async
install()
install()
import asgiref.sync
from asgiref.sync import sync_to_async, ThreadSensitiveContext
assert sync_to_async is bridge.sync_to_async
assert ThreadSensitiveContext is bridge.ThreadSensitiveContext
assert base.sync_to_async is bridge.sync_to_async
assert base.async_to_sync is bridge.async_to_sync
assert deprecation.markcoroutinefunction is bridge.markcoroutinefunction
assert asgiref.wsgi.AsyncToSync is not bridge.AsyncToSync
assert asgiref.sync.SyncToAsync is bridge.SyncToAsync
print("ok")
"""
    _run_prints_ok(code)
