"""A small Flask app served over ASGI through ``WsgiToAsgi``.

Run it with::

    asgibridge serve examples.flask_app:app      # or: uvicorn examples.flask_app:asgi_app

then try ``curl localhost:8000/``, ``curl -d hello localhost:8000/echo`` and
``curl -N localhost:8000/stream``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Flask, Response, request

from asgibridge.wsgi import WsgiToAsgi

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    """Plain hello."""
    return "Hello, World!"


@app.post("/echo")
def echo() -> Response:
    """Send the request body back, chunk by chunk (the body is never held whole)."""
    body = request.stream  # taken now: the generator runs after the view returns

    def chunks() -> Iterator[bytes]:
        while chunk := body.read(65536):
            yield chunk

    return Response(chunks(), mimetype=request.mimetype or "application/octet-stream")


@app.get("/stream")
def stream() -> Response:
    """A streaming response: five lines, a tenth of a second apart."""

    def lines() -> Iterator[str]:
        for i in range(5):
            yield f"line {i}\n"
            time.sleep(0.1)

    return Response(lines(), mimetype="text/plain")


asgi_app = WsgiToAsgi(app)
