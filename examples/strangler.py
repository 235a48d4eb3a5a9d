"""A migration in progress: a legacy Flask app and a new FastAPI app behind one Dispatcher.

New endpoints live in FastAPI under ``/api/v2``; every other path still
reaches the legacy Flask app. Serve it on an ASGI or a WSGI server::

    asgibridge serve examples.strangler:app                       # uvicorn
    asgibridge serve examples.strangler:app --server gunicorn     # gunicorn, gthread

then try ``curl localhost:8000/``, ``curl localhost:8000/where`` and
``curl localhost:8000/api/v2/items/3``. On gunicorn the Flask app is called
straight from gunicorn's threads (no event loop in between), and FastAPI runs
on one loop per worker with its lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from flask import Flask, request

from asgibridge import Dispatcher

# ------------------------------------------------------------------ the legacy app
legacy = Flask(__name__)


@legacy.get("/")
def home() -> str:
    """The legacy home page."""
    return "legacy home"


@legacy.get("/where")
def where() -> dict[str, str]:
    """What the WSGI app sees of its mount point."""
    return {
        "app": "flask",
        "script_name": request.environ.get("SCRIPT_NAME", ""),
        "path_info": request.environ.get("PATH_INFO", ""),
    }


# ------------------------------------------------------------------ the new API


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Runs once per worker process: the Dispatcher passes lifespan on to FastAPI."""
    yield {"items": {n: f"item {n}" for n in range(10)}}


api = FastAPI(lifespan=lifespan)


@api.get("/items/{item_id}")
async def read_item(item_id: int, request: Request) -> dict[str, Any]:
    """An endpoint already moved to FastAPI; ``items`` comes from the lifespan."""
    return {
        "app": "fastapi",
        "item_id": item_id,
        "name": request.state.items.get(item_id),
        "root_path": request.scope["root_path"],
    }


@api.websocket("/echo")
async def echo(ws: WebSocket) -> None:
    """A WebSocket endpoint (ASGI servers only)."""
    await ws.accept()
    await ws.send_text(await ws.receive_text())
    await ws.close()


#: The one app to serve.
app = Dispatcher({"/api/v2": api}, default=legacy)
