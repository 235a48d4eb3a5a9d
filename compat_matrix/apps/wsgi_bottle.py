"""The scenario app in Bottle.

Bottle has no session machinery; its own signed cookies
(``set_cookie(..., secret=...)``) stand in for the session scenario.
"""

from __future__ import annotations

from typing import Any

import bottle

from .common import SECRET, STARTED, STREAMS, digest, forever, sse

app = bottle.Bottle()
request = bottle.request
response = bottle.response


@app.get("/echo/<name>", name="echo")
def echo(name: str) -> Any:
    return {"name": name, "q": request.query.getunicode("q")}


@app.post("/form")
def form() -> Any:
    return {"a": request.forms.getunicode("a"), "b": request.forms.getunicode("b")}


@app.post("/json")
def json_echo() -> Any:
    data = request.json
    return {"n": data["n"] + 1, "s": data["s"]}


@app.post("/upload")
def upload() -> Any:
    return digest(request.body.read)


@app.get("/sse")
def events() -> Any:
    response.content_type = "text/event-stream"
    return sse(int(request.query.get("n", "5")))


@app.get("/stream-forever/<sid>")
def stream_forever(sid: str) -> Any:
    response.content_type = "text/event-stream"
    return forever(sid)


@app.get("/stream-status/<sid>")
def stream_status(sid: str) -> Any:
    return {"state": STREAMS.get(sid)}


@app.get("/cookies/set")
def cookies_set() -> Any:
    response.set_cookie("account", "alice", secret=SECRET, path="/")
    response.set_cookie("a", "1", path="/")
    response.set_cookie("b", "2", path="/")
    return {"ok": True}


@app.get("/cookies/read")
def cookies_read() -> Any:
    return {
        "a": request.get_cookie("a"),
        "b": request.get_cookie("b"),
        "user": request.get_cookie("account", secret=SECRET),
    }


@app.get("/redirect")
def go() -> Any:
    bottle.redirect(app.get_url("echo", name="target"))


@app.get("/teapot")
def teapot() -> Any:
    response.status = 418
    response.set_header("X-Compat", "yes")
    response.content_type = "text/plain"
    return "short and stout"


@app.get("/error")
def error() -> Any:
    raise RuntimeError("compat matrix: a deliberate application error")


@app.get("/where", name="where")
def where() -> Any:
    return {"root": request.environ.get("SCRIPT_NAME"), "url": app.get_url("where")}


@app.get("/lifespan")
def lifespan() -> Any:
    return {"started": STARTED.get("value")}
