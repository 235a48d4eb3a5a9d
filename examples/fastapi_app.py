"""A FastAPI application with a lifespan, served by any WSGI server through AsgiToWsgi.

::

    asgibridge serve examples.fastapi_app:app --server gunicorn
    gunicorn -k gthread --threads 8 examples.fastapi_app:wsgi_app
    waitress-serve --threads 8 examples.fastapi_app:wsgi_app

Startup runs before the first request in each worker process, and shutdown
when the worker exits. What the lifespan yields is each request's
``request.state``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import StreamingResponse

from asgibridge.asgi import AsgiToWsgi


class Database:
    """Stands in for a connection pool that must be opened on the serving loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.items = {n: f"item {n}" for n in range(10)}
        self.log: list[str] = []

    async def close(self) -> None:
        self.items.clear()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    db = Database()  # runs once per worker process, before its first request
    yield {"db": db, "pid": os.getpid()}
    await db.close()  # runs at close(), interpreter exit, or worker exit


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
async def read_item(item_id: int, request: Request) -> dict[str, Any]:
    """Read through the lifespan's database object (same loop as startup)."""
    db: Database = request.state.db
    assert db.loop is asyncio.get_running_loop()
    return {"item_id": item_id, "name": db.items.get(item_id), "pid": request.state.pid}


@app.post("/notify")
async def notify(request: Request, tasks: BackgroundTasks) -> dict[str, str]:
    """The response goes out first; the background task then runs to completion."""
    db: Database = request.state.db
    tasks.add_task(db.log.append, "notified")
    return {"status": "queued"}


@app.get("/count")
async def count(to: int = 5) -> StreamingResponse:
    """A streamed response: each line reaches the client as it is produced."""

    async def lines() -> AsyncIterator[str]:
        for n in range(to):
            yield f"{n}\n"
            await asyncio.sleep(0)

    return StreamingResponse(lines(), media_type="text/plain")


#: The WSGI application to give the server.
wsgi_app = AsgiToWsgi(app)
