"""The scenario app in Django: one project, served by its WSGI or its ASGI handler.

Settings are configured in code; the database is SQLite in the cell's
temporary directory (``COMPAT_TMP``), migrated at import. Sessions use the
signed-cookie backend. There is no CSRF middleware, so the POST scenarios
need no token.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import django
from django.conf import settings

from .common import SECRET, STARTED, STREAMS, aforever, asse, digest, forever, sse

if not settings.configured:
    _tmp = os.environ.get("COMPAT_TMP") or tempfile.mkdtemp(prefix="compat-django-")
    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
        ],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(_tmp, "compat.sqlite3"),
            }
        },
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        DATA_UPLOAD_MAX_MEMORY_SIZE=None,
    )
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", verbosity=0, interactive=False)
    connections.close_all()  # servers that fork after import must not share it

from django.core.handlers.asgi import ASGIRequest
from django.http import (
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect
from django.urls import path, reverse


def echo(request: HttpRequest, name: str) -> HttpResponse:
    return JsonResponse({"name": name, "q": request.GET.get("q")})


def form(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"a": request.POST["a"], "b": request.POST["b"]})


def json_echo(request: HttpRequest) -> HttpResponse:
    data = json.loads(request.body)
    return JsonResponse({"n": data["n"] + 1, "s": data["s"]})


def upload(request: HttpRequest) -> HttpResponse:
    return JsonResponse(digest(request.read))


def events(request: HttpRequest) -> HttpResponse:
    n = int(request.GET.get("n", "5"))
    if isinstance(request, ASGIRequest):
        return StreamingHttpResponse(asse(n), content_type="text/event-stream")
    return StreamingHttpResponse(sse(n), content_type="text/event-stream")


def stream_forever(request: HttpRequest, sid: str) -> HttpResponse:
    if isinstance(request, ASGIRequest):
        return StreamingHttpResponse(aforever(sid), content_type="text/event-stream")
    return StreamingHttpResponse(forever(sid), content_type="text/event-stream")


def stream_status(request: HttpRequest, sid: str) -> HttpResponse:
    return JsonResponse({"state": STREAMS.get(sid)})


def cookies_set(request: HttpRequest) -> HttpResponse:
    request.session["user"] = "alice"
    resp = JsonResponse({"ok": True})
    resp.set_cookie("a", "1")
    resp.set_cookie("b", "2")
    return resp


def cookies_read(request: HttpRequest) -> HttpResponse:
    return JsonResponse(
        {
            "a": request.COOKIES.get("a"),
            "b": request.COOKIES.get("b"),
            "user": request.session.get("user"),
        }
    )


def go(request: HttpRequest) -> HttpResponse:
    return redirect("echo", name="target")


def teapot(request: HttpRequest) -> HttpResponse:
    return HttpResponse("short and stout", status=418, headers={"X-Compat": "yes"})


def error(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("compat matrix: a deliberate application error")


def where(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"root": request.META.get("SCRIPT_NAME"), "url": reverse("where")})


def lifespan(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"started": STARTED.get("value")})


def orm(request: HttpRequest) -> HttpResponse:
    from django.contrib.auth.models import User

    User.objects.get_or_create(username="compat")
    return JsonResponse({"count": User.objects.filter(username="compat").count()})


urlpatterns = [
    path("echo/<str:name>", echo, name="echo"),
    path("form", form),
    path("json", json_echo),
    path("upload", upload),
    path("sse", events),
    path("stream-forever/<str:sid>", stream_forever),
    path("stream-status/<str:sid>", stream_status),
    path("cookies/set", cookies_set),
    path("cookies/read", cookies_read),
    path("redirect", go),
    path("teapot", teapot),
    path("error", error),
    path("where", where, name="where"),
    path("lifespan", lifespan),
    path("orm", orm),
]


def wsgi_app() -> Any:
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def asgi_app() -> Any:
    from django.core.asgi import get_asgi_application

    return get_asgi_application()
