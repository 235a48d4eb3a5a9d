"""The scenario app in Quart."""

from __future__ import annotations

from typing import Any

from quart import Quart, Response, jsonify, make_response, redirect, request, session, url_for

from .common import SECRET, STREAMS, aforever, asse, digest_async

app = Quart("compat_quart")
app.secret_key = SECRET


@app.before_serving
async def startup() -> None:
    app.config["COMPAT_STARTED"] = "yes"


@app.get("/echo/<name>")
async def echo(name: str) -> Any:
    return jsonify(name=name, q=request.args.get("q"))


@app.post("/form")
async def form() -> Any:
    data = await request.form
    return jsonify(a=data["a"], b=data["b"])


@app.post("/json")
async def json_echo() -> Any:
    data = await request.get_json()
    return jsonify(n=data["n"] + 1, s=data["s"])


@app.post("/upload")
async def upload() -> Any:
    return jsonify(await digest_async(request.body.__aiter__()))


@app.get("/sse")
async def events() -> Any:
    n = int(request.args.get("n", "5"))
    return Response(asse(n), mimetype="text/event-stream")


@app.get("/stream-forever/<sid>")
async def stream_forever(sid: str) -> Any:
    return Response(aforever(sid), mimetype="text/event-stream")


@app.get("/stream-status/<sid>")
async def stream_status(sid: str) -> Any:
    return jsonify(state=STREAMS.get(sid))


@app.get("/cookies/set")
async def cookies_set() -> Any:
    session["user"] = "alice"
    resp = await make_response(jsonify(ok=True))
    resp.set_cookie("a", "1")
    resp.set_cookie("b", "2")
    return resp


@app.get("/cookies/read")
async def cookies_read() -> Any:
    c = request.cookies
    return jsonify(a=c.get("a"), b=c.get("b"), user=session.get("user"))


@app.get("/redirect")
async def go() -> Any:
    return redirect(url_for("echo", name="target"))


@app.get("/teapot")
async def teapot() -> Any:
    return "short and stout", 418, {"X-Compat": "yes"}


@app.get("/error")
async def error() -> Any:
    raise RuntimeError("compat matrix: a deliberate application error")


@app.get("/where")
async def where() -> Any:
    return jsonify(root=request.root_path, url=url_for("where"))


@app.get("/lifespan")
async def started() -> Any:
    return jsonify(started=app.config.get("COMPAT_STARTED"))
