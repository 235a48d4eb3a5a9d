"""The scenario app in FastAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, StreamingResponse
from starlette.middleware.sessions import SessionMiddleware

from .common import SECRET, STREAMS, aforever, asse, digest_async


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"started": "yes"}


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
app.add_middleware(SessionMiddleware, secret_key=SECRET)


@app.get("/echo/{name}", name="echo")
async def echo(name: str, q: str | None = None) -> dict[str, Any]:
    return {"name": name, "q": q}


@app.post("/form")
async def form(a: str = Form(), b: str = Form()) -> dict[str, Any]:
    return {"a": a, "b": b}


@app.post("/json")
async def json_echo(data: dict[str, Any]) -> dict[str, Any]:
    return {"n": data["n"] + 1, "s": data["s"]}


@app.post("/upload")
async def upload(request: Request) -> dict[str, Any]:
    return await digest_async(request.stream())


@app.get("/sse")
async def events(n: int = 5) -> StreamingResponse:
    return StreamingResponse(asse(n), media_type="text/event-stream")


@app.get("/stream-forever/{sid}")
async def stream_forever(sid: str) -> StreamingResponse:
    return StreamingResponse(aforever(sid), media_type="text/event-stream")


@app.get("/stream-status/{sid}")
async def stream_status(sid: str) -> dict[str, Any]:
    return {"state": STREAMS.get(sid)}


@app.get("/cookies/set")
async def cookies_set(request: Request) -> Any:
    from fastapi.responses import JSONResponse

    request.session["user"] = "alice"
    resp = JSONResponse({"ok": True})
    resp.set_cookie("a", "1")
    resp.set_cookie("b", "2")
    return resp


@app.get("/cookies/read")
async def cookies_read(request: Request) -> dict[str, Any]:
    c = request.cookies
    return {"a": c.get("a"), "b": c.get("b"), "user": request.session.get("user")}


@app.get("/redirect")
async def go(request: Request) -> RedirectResponse:
    return RedirectResponse(request.url_for("echo", name="target"), status_code=302)


@app.get("/teapot")
async def teapot() -> PlainTextResponse:
    return PlainTextResponse("short and stout", status_code=418, headers={"X-Compat": "yes"})


@app.get("/error")
async def error() -> None:
    raise RuntimeError("compat matrix: a deliberate application error")


@app.get("/where", name="where")
async def where(request: Request) -> dict[str, Any]:
    return {"root": request.scope.get("root_path"), "url": str(request.url_for("where"))}


@app.get("/lifespan")
async def started(request: Request) -> dict[str, Any]:
    return {"started": getattr(request.state, "started", None)}
