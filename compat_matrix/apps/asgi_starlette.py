"""The scenario app in Starlette."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from .common import SECRET, STREAMS, aforever, asse, digest_async


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
    yield {"started": "yes"}


async def echo(request: Request) -> Response:
    return JSONResponse({"name": request.path_params["name"], "q": request.query_params.get("q")})


async def form(request: Request) -> Response:
    data = await request.form()
    return JSONResponse({"a": data["a"], "b": data["b"]})


async def json_echo(request: Request) -> Response:
    data = await request.json()
    return JSONResponse({"n": data["n"] + 1, "s": data["s"]})


async def upload(request: Request) -> Response:
    return JSONResponse(await digest_async(request.stream()))


async def events(request: Request) -> Response:
    n = int(request.query_params.get("n", "5"))
    return StreamingResponse(asse(n), media_type="text/event-stream")


async def stream_forever(request: Request) -> Response:
    return StreamingResponse(aforever(request.path_params["sid"]), media_type="text/event-stream")


async def stream_status(request: Request) -> Response:
    return JSONResponse({"state": STREAMS.get(request.path_params["sid"])})


async def cookies_set(request: Request) -> Response:
    request.session["user"] = "alice"
    resp = JSONResponse({"ok": True})
    resp.set_cookie("a", "1")
    resp.set_cookie("b", "2")
    return resp


async def cookies_read(request: Request) -> Response:
    c = request.cookies
    return JSONResponse({"a": c.get("a"), "b": c.get("b"), "user": request.session.get("user")})


async def go(request: Request) -> Response:
    return RedirectResponse(request.url_for("echo", name="target"), status_code=302)


async def teapot(request: Request) -> Response:
    return PlainTextResponse("short and stout", status_code=418, headers={"X-Compat": "yes"})


async def error(request: Request) -> Response:
    raise RuntimeError("compat matrix: a deliberate application error")


async def where(request: Request) -> Response:
    return JSONResponse(
        {"root": request.scope.get("root_path"), "url": str(request.url_for("where"))}
    )


async def started(request: Request) -> Response:
    return JSONResponse({"started": getattr(request.state, "started", None)})


app = Starlette(
    routes=[
        Route("/echo/{name}", echo, name="echo"),
        Route("/form", form, methods=["POST"]),
        Route("/json", json_echo, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/sse", events),
        Route("/stream-forever/{sid}", stream_forever),
        Route("/stream-status/{sid}", stream_status),
        Route("/cookies/set", cookies_set),
        Route("/cookies/read", cookies_read),
        Route("/redirect", go),
        Route("/teapot", teapot),
        Route("/error", error),
        Route("/where", where, name="where"),
        Route("/lifespan", started),
    ],
    middleware=[Middleware(SessionMiddleware, secret_key=SECRET)],
    lifespan=lifespan,
)
