"""The scenario app in Litestar."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.response import Redirect, Stream

from .common import SECRET, STREAMS, aforever, asse, digest_async


def startup(app: Litestar) -> None:
    app.state.started = "yes"


@get("/echo/{item:str}", name="echo")
async def echo(item: str, q: str | None = None) -> dict[str, Any]:
    # The parameter is not called "name": url_for(name, **params) takes that.
    return {"name": item, "q": q}


@post("/form", status_code=200)
async def form(request: Request[Any, Any, Any]) -> dict[str, Any]:
    data = await request.form()
    return {"a": data["a"], "b": data["b"]}


@post("/json", status_code=200)
async def json_echo(data: dict[str, Any]) -> dict[str, Any]:
    return {"n": data["n"] + 1, "s": data["s"]}


@post("/upload", status_code=200)
async def upload(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return await digest_async(request.stream())


@get("/sse")
async def events(n: int = 5) -> Stream:
    return Stream(asse(n), media_type="text/event-stream")


@get("/stream-forever/{sid:str}")
async def stream_forever(sid: str) -> Stream:
    return Stream(aforever(sid), media_type="text/event-stream")


@get("/stream-status/{sid:str}")
async def stream_status(sid: str) -> dict[str, Any]:
    return {"state": STREAMS.get(sid)}


@get("/cookies/set")
async def cookies_set(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    request.set_session({"user": "alice"})
    return Response({"ok": True}, cookies=[Cookie(key="a", value="1"), Cookie(key="b", value="2")])


@get("/cookies/read")
async def cookies_read(request: Request[Any, Any, Any]) -> dict[str, Any]:
    c = request.cookies
    user = request.session.get("user") if request.session else None
    return {"a": c.get("a"), "b": c.get("b"), "user": user}


@get("/redirect")
async def go(request: Request[Any, Any, Any]) -> Redirect:
    return Redirect(path=str(request.url_for("echo", item="target")), status_code=302)


@get("/teapot")
async def teapot() -> Response[str]:
    return Response(
        "short and stout", status_code=418, headers={"X-Compat": "yes"}, media_type="text/plain"
    )


@get("/error")
async def error() -> None:
    raise RuntimeError("compat matrix: a deliberate application error")


@get("/where", name="where")
async def where(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"root": request.scope.get("root_path"), "url": str(request.url_for("where"))}


@get("/lifespan")
async def started(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"started": getattr(request.app.state, "started", None)}


app = Litestar(
    route_handlers=[
        echo,
        form,
        json_echo,
        upload,
        events,
        stream_forever,
        stream_status,
        cookies_set,
        cookies_read,
        go,
        teapot,
        error,
        where,
        started,
    ],
    on_startup=[startup],
    middleware=[CookieBackendConfig(secret=SECRET.encode()[:16]).middleware],
    openapi_config=None,
)
