"""Serve the demo project on uvicorn, one of several ways (used by the tests and benchmarks).

Run from anywhere::

    python examples/django_project/serve.py asgi --port 8000

Modes:

``asgi``
    Django's ASGI handler on asgibridge (``asgibridge.django.get_asgi_application``).
``stock-asgi``
    Django's own ``get_asgi_application()`` with stock asgiref, for comparison.
``wsgi-thread`` / ``wsgi-greenlet``
    Django's WSGI handler through ``asgibridge.WsgiToAsgi`` (thread or greenlet executor).
``a2wsgi``
    Django's WSGI handler through ``a2wsgi.WSGIMiddleware``, for comparison.

``--fd N`` serves on an inherited listening socket (how the tests use port 0);
``--migrate`` runs ``migrate`` first (into ``DEMO_DB``); ``--count-handoffs`` counts
every ``SyncToAsync`` call (a thread hand-off) and answers ``GET /__handoffs__`` with
the running total, without entering Django.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODES = ("asgi", "stock-asgi", "wsgi-thread", "wsgi-greenlet", "a2wsgi")


def build_app(mode: str) -> Any:
    """The ASGI application for ``mode`` (Django is set up as a side effect)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")
    if mode == "asgi":
        from asgibridge.django import get_asgi_application

        return get_asgi_application()
    if mode == "stock-asgi":
        from django.core.asgi import get_asgi_application as stock

        return stock()
    from django.core.wsgi import get_wsgi_application

    wsgi = get_wsgi_application()
    if mode == "a2wsgi":
        from a2wsgi import WSGIMiddleware

        return WSGIMiddleware(wsgi)
    from asgibridge import WsgiToAsgi

    return WsgiToAsgi(wsgi, executor="greenlet" if mode == "wsgi-greenlet" else "thread")


class HandoffCounter:
    """Counts calls into ``SyncToAsync.__call__`` of the sync module Django uses."""

    def __init__(self) -> None:
        self.count = 0
        import asgiref.sync

        cls = asgiref.sync.SyncToAsync  # asgibridge's once asgibridge.django installed it
        original = cls.__call__
        counter = self

        async def counting_call(self: Any, *args: Any, **kwargs: Any) -> Any:
            counter.count += 1
            return await original(self, *args, **kwargs)

        cls.__call__ = counting_call  # type: ignore[method-assign]

    def wrap(self, app: Any) -> Any:
        async def counted(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"] == "/__handoffs__":
                body = json.dumps({"handoffs": self.count}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            await app(scope, receive, send)

        return counted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--fd", type=int, default=None)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--migrate", action="store_true")
    parser.add_argument("--count-handoffs", action="store_true")
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--http", default="auto")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")
    app = build_app(args.mode)
    if args.migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    if args.count_handoffs:
        app = HandoffCounter().wrap(app)

    import uvicorn

    lifespan = "off" if args.mode in ("asgi", "stock-asgi") else "auto"
    common: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": lifespan,
        "loop": args.loop,
        "http": args.http,
        "access_log": False,
    }
    if args.fd is not None:
        config = uvicorn.Config(app, fd=args.fd, **common)
    else:
        config = uvicorn.Config(app, host="127.0.0.1", port=args.port, **common)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
