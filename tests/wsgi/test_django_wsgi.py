"""Django's ``WSGIHandler`` through ``WsgiToAsgi`` on uvicorn, with a real client (rule C22).

Django's ``WSGIHandler`` emits every ``Set-Cookie`` value with a leading space
(``cookie.output(header="")``). Passed on as it is, uvicorn's h11 refuses the
response and drops the connection, and httptools writes a double space. Each
test runs a small Django project in a uvicorn subprocess (Django settings are
per process), once per uvicorn HTTP implementation, and checks that two plain
cookies, the CSRF cookie and a signed-cookie session reach the client, and that
the session comes back on the next request.
"""

from __future__ import annotations

import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.asgi_servers import Process, uvicorn_process

pytest.importorskip("django")

PROJECT = """
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-secret-key-for-asgibridge-c22-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
    INSTALLED_APPS=["django.contrib.sessions"],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    DATABASES={},
)

import django

django.setup()

from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.urls import path

from asgibridge import WsgiToAsgi


def login(request):
    request.session["user"] = "alice"
    get_token(request)
    response = HttpResponse("logged in")
    response.set_cookie("theme", "dark", max_age=3600)
    response.set_cookie("lang", "fr", httponly=True, samesite="Lax")
    return response


def whoami(request):
    return HttpResponse(request.session.get("user", "nobody"))


urlpatterns = [path("login", login), path("whoami", whoami)]

app = WsgiToAsgi(WSGIHandler(), executor=EXECUTOR)
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("django_c22")
    for executor in ("thread", "greenlet"):
        source = PROJECT.replace("EXECUTOR", repr(executor))
        (root / f"djproject_{executor}.py").write_text(textwrap.dedent(source))
    return root


@pytest.fixture(
    params=[
        pytest.param(("h11", "thread"), id="h11-thread"),
        pytest.param(("httptools", "thread"), id="httptools-thread"),
        pytest.param(("h11", "greenlet"), id="h11-greenlet"),
    ]
)
def server(request: pytest.FixtureRequest, project: Path) -> Iterator[Process]:
    http, executor = request.param
    with uvicorn_process(f"djproject_{executor}:app", chdir=project, http=http) as proc:
        yield proc


def test_c22_django_cookies_and_session_reach_a_real_client(server: Process) -> None:
    with httpx.Client(base_url=server.url, timeout=10.0) as client:
        response = client.get("/login")
        assert response.status_code == 200, server.log()
        assert response.text == "logged in"
        set_cookies = response.headers.get_list("set-cookie")
        names = sorted(c.split("=", 1)[0] for c in set_cookies)
        assert names == ["csrftoken", "lang", "sessionid", "theme"], set_cookies
        assert all(c == c.strip() and "  " not in c for c in set_cookies), set_cookies
        assert client.cookies["theme"] == "dark"
        assert client.cookies["lang"] == "fr"
        # The signed session cookie comes back and Django reads it.
        again = client.get("/whoami")
        assert again.status_code == 200 and again.text == "alice"
    assert "Traceback" not in server.log(), server.log()


def test_c22_django_set_cookie_lines_on_the_wire(server: Process) -> None:
    """The raw response: each cookie is one ``set-cookie: name=...`` line, one space after the colon."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10.0) as conn:
        conn.sendall(b"GET /login HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
            if len(data) > 1 << 20:  # pragma: no cover - bounded
                break
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.1 200"), data[:500]
    lines = [line for line in head.split(b"\r\n") if line.lower().startswith(b"set-cookie:")]
    assert len(lines) == 4, head
    for line in lines:
        assert line[len(b"set-cookie:") :][:1] == b" " and line[len(b"set-cookie: ") :][:1] != b" "
