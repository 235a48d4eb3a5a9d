"""Servers that have no command line of their own: ``python -m compat_matrix.runners NAME PORT``.

* ``wsgiref``: the standard library's server, one thread per request.
* ``werkzeug``: werkzeug's development server, threaded.
"""

from __future__ import annotations

import sys
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def main(argv: list[str]) -> None:
    name, port = argv[0], int(argv[1])
    from .target import app

    if name == "wsgiref":
        server = make_server(
            "127.0.0.1", port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        server.serve_forever(poll_interval=0.1)
    elif name == "werkzeug":
        from werkzeug.serving import run_simple

        run_simple("127.0.0.1", port, app, threaded=True)
    else:
        raise SystemExit(f"unknown server {name!r}: use wsgiref or werkzeug")


if __name__ == "__main__":
    main(sys.argv[1:])
