"""The scenario app in Pyramid."""

from __future__ import annotations

import json
from typing import Any

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPFound
from pyramid.request import Request
from pyramid.response import Response
from pyramid.session import SignedCookieSessionFactory

from .common import SECRET, STARTED, STREAMS, digest, forever, sse


def _json(data: Any) -> Response:
    return Response(body=json.dumps(data).encode(), content_type="application/json")


def echo(request: Request) -> Response:
    return _json({"name": request.matchdict["name"], "q": request.GET.get("q")})


def form(request: Request) -> Response:
    return _json({"a": request.POST["a"], "b": request.POST["b"]})


def json_echo(request: Request) -> Response:
    data = request.json_body
    return _json({"n": data["n"] + 1, "s": data["s"]})


def upload(request: Request) -> Response:
    return _json(digest(request.body_file.read))


def events(request: Request) -> Response:
    n = int(request.GET.get("n", "5"))
    return Response(app_iter=sse(n), content_type="text/event-stream", charset=None)


def stream_forever(request: Request) -> Response:
    sid = request.matchdict["sid"]
    return Response(app_iter=forever(sid), content_type="text/event-stream", charset=None)


def stream_status(request: Request) -> Response:
    return _json({"state": STREAMS.get(request.matchdict["sid"])})


def cookies_set(request: Request) -> Response:
    request.session["user"] = "alice"
    resp = _json({"ok": True})
    resp.set_cookie("a", "1")
    resp.set_cookie("b", "2")
    return resp


def cookies_read(request: Request) -> Response:
    c = request.cookies
    return _json({"a": c.get("a"), "b": c.get("b"), "user": request.session.get("user")})


def go(request: Request) -> Response:
    return HTTPFound(location=request.route_path("echo", name="target"))


def teapot(request: Request) -> Response:
    return Response(
        "short and stout",
        status="418 I'm a teapot",
        headers={"X-Compat": "yes"},
        content_type="text/plain",
    )


def error(request: Request) -> Response:
    raise RuntimeError("compat matrix: a deliberate application error")


def where(request: Request) -> Response:
    return _json({"root": request.script_name, "url": request.route_path("where")})


def lifespan(request: Request) -> Response:
    return _json({"started": STARTED.get("value")})


ROUTES = [
    ("echo", "/echo/{name}", "GET", echo),
    ("form", "/form", "POST", form),
    ("json", "/json", "POST", json_echo),
    ("upload", "/upload", "POST", upload),
    ("sse", "/sse", "GET", events),
    ("forever", "/stream-forever/{sid}", "GET", stream_forever),
    ("status", "/stream-status/{sid}", "GET", stream_status),
    ("cookies_set", "/cookies/set", "GET", cookies_set),
    ("cookies_read", "/cookies/read", "GET", cookies_read),
    ("redirect", "/redirect", "GET", go),
    ("teapot", "/teapot", "GET", teapot),
    ("error", "/error", "GET", error),
    ("where", "/where", "GET", where),
    ("lifespan", "/lifespan", "GET", lifespan),
]

with Configurator() as config:
    config.set_session_factory(SignedCookieSessionFactory(SECRET))
    for _name, _pattern, _method, _view in ROUTES:
        config.add_route(_name, _pattern, request_method=_method)
        config.add_view(_view, route_name=_name)
    app = config.make_wsgi_app()
