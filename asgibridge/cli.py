"""``asgibridge serve``: serve any WSGI or ASGI app on any supported server.

Theory of operation
-------------------
``asgibridge serve MODULE:ATTR`` (or ``python -m asgibridge serve``):

1. puts the current directory (``--app-dir``) first on ``sys.path`` and
   imports the target, or builds Django's handler from a settings module;
2. detects its kind (:func:`asgibridge.dispatch.detect_interface`: WSGI,
   ASGI 3 or ASGI 2; ``--interface`` overrides);
3. wraps it as the chosen server needs: :class:`~asgibridge.WsgiToAsgi` for
   a WSGI app on an ASGI server (uvicorn, hypercorn, granian, daphne),
   :class:`~asgibridge.AsgiToWsgi` for an ASGI app on a WSGI server
   (gunicorn, waitress), :meth:`~asgibridge.Dispatcher.as_wsgi` for a
   dispatcher there; ASGI 2 apps are adapted to ASGI 3;
4. checks that the address is free, prints one line saying what it serves
   where, and runs the server's own command-line entry point in this
   process, with the arguments after ``--`` passed through unchanged.

The server is given the import string ``asgibridge.cli:asgi`` or
``asgibridge.cli:wsgi``. In this process the module attribute is the app
built in step 3. A worker process that imports it afresh (uvicorn and
granian ``--workers N`` spawn them) rebuilds it from the ``ASGIBRIDGE_SERVE``
environment variable, so nothing is pickled. gunicorn forks its workers
after step 3, so the app is imported once in the master, as with
``--preload``; both bridges are fork-safe (rule A2).

Every failure the user can fix is a :class:`ServeError`, printed as one
message naming the fix, with exit status 2.

This module is the command line and the flow above; steps 1 to 3 (loading
and wrapping) and each server's runner live in :mod:`asgibridge._serve`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from ._serve import (
    ENV,
    RUNNERS,
    SERVERS,
    NoLifespan,
    ServeError,
    build_app,
    build_from_env,
    claim_port,
    load_target,
    start_bridge,
)

__all__ = ["SERVERS", "ServeError", "build_app", "load_target", "main", "start_bridge"]

#: The apps ``asgibridge serve`` built in this process, by import-string name (asgi, wsgi).
_built: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """``asgi`` / ``wsgi``: the app ``asgibridge serve`` built, for the server's import string."""
    if name not in ("asgi", "wsgi"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = _built.get(name)
    if app is None:
        app = _built[name] = build_from_env(name)
    return app


# ------------------------------------------------------------------ checks


def _require_server(server: str) -> None:
    module = SERVERS[server][1]
    if importlib.util.find_spec(module) is None:
        raise ServeError(
            f"the {server} server is not installed in this environment ({sys.executable}). "
            f"Install it with:  pip install 'asgibridge[{server}]'"
        )


def _note_double_bridge(app: Any, server_kind: str, server: str) -> None:
    from .asgi import AsgiToWsgi
    from .wsgi import WsgiToAsgi

    inner: Any = None
    if server_kind == "asgi" and isinstance(app, AsgiToWsgi):
        inner, kind = app.app, "ASGI"
    elif server_kind == "wsgi" and isinstance(app, WsgiToAsgi):
        inner, kind = app.app, "WSGI"
    if inner is not None:
        print(
            f"asgibridge serve: note: this app is already a bridge around the {kind} app "
            f"{inner!r}, so {server} will serve it through two bridges; point "
            f"asgibridge serve at the {kind} app itself to serve it directly",
            file=sys.stderr,
        )


# ------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asgibridge",
        description="Serve a WSGI or ASGI app on any supported server, bridged as needed.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="serve MODULE:ATTR",
        description=(
            "Serve a WSGI, ASGI 3 or ASGI 2 app (or a Django project) on a server. Arguments "
            "after -- go to the server unchanged, e.g. -- --log-level debug."
        ),
    )
    serve.add_argument(
        "target",
        nargs="?",
        metavar="MODULE:ATTR",
        help="the app, e.g. examples.flask_app:app; MODULE alone takes 'application' or "
        "'app', or a Django settings module",
    )
    serve.add_argument("--server", choices=list(SERVERS), default="uvicorn", help="default uvicorn")
    serve.add_argument(
        "--executor",
        choices=["thread", "greenlet"],
        default="thread",
        help="where a WSGI app runs on an ASGI server (WsgiToAsgi); default thread",
    )
    serve.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="default 8000; 0 picks a free port")
    serve.add_argument("--workers", type=int, default=1, help="worker processes; default 1")
    serve.add_argument("--lifespan", choices=["auto", "on", "off"], default="auto")
    serve.add_argument("--root-path", default="", help="the prefix a proxy mounts the app at")
    serve.add_argument(
        "--interface",
        choices=["wsgi", "asgi3", "asgi2"],
        default=None,
        help="the app's kind, when detection cannot tell",
    )
    serve.add_argument("--django-settings", metavar="MODULE", help="e.g. mysite.settings")
    serve.add_argument(
        "--factory", action="store_true", help="MODULE:ATTR is a function that returns the app"
    )
    serve.add_argument("--app-dir", default=".", help="put DIR first on sys.path; default .")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``asgibridge`` command; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    native: list[str] = []
    if "--" in args:
        at = args.index("--")
        args, native = args[:at], args[at + 1 :]
    parser = _parser()
    o = parser.parse_args(args)
    try:
        return _serve_command(o, native)
    except ServeError as exc:
        print(f"asgibridge serve: error: {exc}", file=sys.stderr)
        return 2


def _serve_command(o: argparse.Namespace, native: list[str]) -> int:
    if o.workers < 1:
        raise ServeError(f"--workers must be 1 or more, got {o.workers}")
    if o.root_path and (not o.root_path.startswith("/") or o.root_path.endswith("/")):
        raise ServeError(f"--root-path must look like /prefix (no trailing /), got {o.root_path!r}")
    server_kind = SERVERS[o.server][0]
    _require_server(o.server)
    app_dir = os.path.abspath(o.app_dir)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    app = load_target(
        o.target,
        django_settings=o.django_settings,
        factory=o.factory,
        interface=o.interface,
        server_kind=server_kind,
    )
    built, how = build_app(
        app, server_kind, interface=o.interface, executor=o.executor, lifespan=o.lifespan
    )
    no_lifespan = o.lifespan == "off" and o.server == "hypercorn"
    if no_lifespan:
        built = NoLifespan(built)
    _note_double_bridge(app, server_kind, o.server)
    if o.executor != "thread" and "WsgiToAsgi" not in how:
        print(
            "asgibridge serve: note: --executor applies to a WSGI app served on an ASGI server, "
            "so it is ignored here (a Dispatcher's WSGI children take "
            "Dispatcher(..., wsgi_options={'executor': 'greenlet'}))",
            file=sys.stderr,
        )
    o.port = claim_port(o.host, o.port)
    name = "asgi" if server_kind == "asgi" else "wsgi"
    _built[name] = built
    os.environ[ENV] = json.dumps(
        {
            "target": o.target,
            "django_settings": o.django_settings,
            "factory": o.factory,
            "interface": o.interface,
            "server_kind": server_kind,
            "executor": o.executor,
            "lifespan": o.lifespan,
            "app_dir": app_dir,
            "no_lifespan": no_lifespan,
        }
    )
    shown = o.target or f"Django ({o.django_settings})"
    url_host = f"[{o.host}]" if ":" in o.host else o.host
    print(
        f"asgibridge: serving {shown} ({how}) on {o.server} at "
        f"http://{url_host}:{o.port}{o.root_path}",
        file=sys.stderr,
        flush=True,
    )
    return RUNNERS[o.server](o, f"asgibridge.cli:{name}", native, _built)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
