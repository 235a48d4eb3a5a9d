"""The scenario app in Flask."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, redirect, request, session, url_for

from .common import SECRET, STARTED, STREAMS, digest, forever, sse

app = Flask("compat_flask")
app.secret_key = SECRET


@app.get("/echo/<name>")
def echo(name: str) -> Any:
    return jsonify(name=name, q=request.args.get("q"))


@app.post("/form")
def form() -> Any:
    return jsonify(a=request.form["a"], b=request.form["b"])


@app.post("/json")
def json_echo() -> Any:
    data = request.get_json()
    return jsonify(n=data["n"] + 1, s=data["s"])


@app.post("/upload")
def upload() -> Any:
    return jsonify(digest(request.stream.read))


@app.get("/sse")
def events() -> Any:
    return Response(sse(int(request.args.get("n", "5"))), mimetype="text/event-stream")


@app.get("/stream-forever/<sid>")
def stream_forever(sid: str) -> Any:
    return Response(forever(sid), mimetype="text/event-stream")


@app.get("/stream-status/<sid>")
def stream_status(sid: str) -> Any:
    return jsonify(state=STREAMS.get(sid))


@app.get("/cookies/set")
def cookies_set() -> Any:
    session["user"] = "alice"
    resp = jsonify(ok=True)
    resp.set_cookie("a", "1")
    resp.set_cookie("b", "2")
    return resp


@app.get("/cookies/read")
def cookies_read() -> Any:
    return jsonify(a=request.cookies.get("a"), b=request.cookies.get("b"), user=session.get("user"))


@app.get("/redirect")
def go() -> Any:
    return redirect(url_for("echo", name="target"))


@app.get("/teapot")
def teapot() -> Any:
    return "short and stout", 418, {"X-Compat": "yes"}


@app.get("/error")
def error() -> Any:
    raise RuntimeError("compat matrix: a deliberate application error")


@app.get("/where")
def where() -> Any:
    return jsonify(root=request.environ.get("SCRIPT_NAME"), url=url_for("where"))


@app.get("/lifespan")
def lifespan() -> Any:
    return jsonify(started=STARTED.get("value"))
