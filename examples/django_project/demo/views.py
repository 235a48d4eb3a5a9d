"""Views of the demo project: sync and async, ORM, sessions, auth, CSRF, streaming, cookies."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.contrib.auth import authenticate, login
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.views.decorators.http import require_http_methods

from .apps import EVENTS
from .models import Note


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def sync_view(request: Any) -> JsonResponse:
    """A sync view: it sees no running loop, and runs on its sync middleware's thread."""
    EVENTS.append(("view", threading.get_ident(), request.path))
    return JsonResponse(
        {
            "kind": "sync",
            "loop_running": _loop_running(),
            "middleware_thread": getattr(request, "stamp_thread", None) == threading.get_ident(),
        }
    )


async def async_view(request: Any) -> JsonResponse:
    """An async view: it runs on the event loop."""
    await asyncio.sleep(0)
    return JsonResponse({"kind": "async", "loop_running": _loop_running()})


@require_http_methods(["GET", "POST"])
def notes(request: Any) -> JsonResponse:
    """GET lists the notes, POST (CSRF-protected) adds one from the ``text`` form field."""
    if request.method == "POST":
        note = Note.objects.create(text=request.POST.get("text", ""))
        return JsonResponse({"id": note.pk, "text": note.text}, status=201)
    return JsonResponse({"notes": list(Note.objects.order_by("pk").values_list("text", flat=True))})


async def anotes(request: Any) -> JsonResponse:
    """The ORM from an async view: ``acount`` and an async iteration."""
    count = await Note.objects.acount()
    texts = [n.text async for n in Note.objects.order_by("pk")]
    return JsonResponse({"count": count, "notes": texts})


def csrf(request: Any) -> JsonResponse:
    """Hands out a CSRF token, and sets the ``csrftoken`` cookie."""
    return JsonResponse({"token": get_token(request)})


@require_http_methods(["POST"])
def login_view(request: Any) -> JsonResponse:
    """Logs in with the ``username`` and ``password`` form fields (CSRF-protected)."""
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return JsonResponse({"ok": False}, status=403)
    login(request, user)
    return JsonResponse({"ok": True, "user": user.get_username()})


def whoami(request: Any) -> JsonResponse:
    """Who the session cookie says the client is."""
    user = request.user
    return JsonResponse({"user": user.get_username() if user.is_authenticated else None})


def session_counter(request: Any) -> JsonResponse:
    """Counts this session's visits."""
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JsonResponse({"visits": request.session["visits"]})


def _chunks() -> Iterator[bytes]:
    for i in range(5):
        yield f"chunk {i}\n".encode()


async def _achunks() -> AsyncIterator[bytes]:
    for i in range(5):
        await asyncio.sleep(0)
        yield f"chunk {i}\n".encode()


def stream(request: Any) -> StreamingHttpResponse:
    """Streams five lines, with an iterator native to the handler (async on ASGI)."""
    content: Any = _achunks() if isinstance(request, ASGIRequest) else _chunks()
    return StreamingHttpResponse(content, content_type="text/plain")


def events(request: Any) -> JsonResponse:
    """The recorded request signals and sync-view calls, oldest first."""
    return JsonResponse({"events": [list(e) for e in EVENTS]})


def boom(request: Any) -> HttpResponse:
    """Raises, to show Django's 500 handling (and the ``django.request`` error log)."""
    raise RuntimeError("boom, on purpose")


def cookies(request: Any) -> HttpResponse:
    """Sets three cookies with different attributes."""
    response = HttpResponse("cookies set\n", content_type="text/plain")
    response.set_cookie("plain", "1")
    response.set_cookie("secure_one", "2", httponly=True, samesite="Strict", max_age=3600)
    response.set_cookie("path_one", "3", path="/cookies/")
    return response
