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
"""

from __future__ import annotations

import argparse
import errno
import importlib
import importlib.util
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Sequence
from typing import Any, Literal, cast

from ._serve import DaphneLifespan
from .dispatch import Dispatcher, Interface, as_asgi3, detect_interface

__all__ = ["SERVERS", "ServeError", "build_app", "load_target", "main", "start_bridge"]

#: Supported servers: name -> (kind it serves, module to import, pip extra).
SERVERS: dict[str, tuple[str, str]] = {
    "uvicorn": ("asgi", "uvicorn"),
    "hypercorn": ("asgi", "hypercorn"),
    "granian": ("asgi", "granian"),
    "daphne": ("asgi", "daphne"),
    "gunicorn": ("wsgi", "gunicorn"),
    "waitress": ("wsgi", "waitress"),
}

_ENV = "ASGIBRIDGE_SERVE"
_built: dict[str, Any] = {}


class ServeError(Exception):
    """A problem with what ``asgibridge serve`` was asked to do; the message names the fix."""


# ------------------------------------------------------------------ loading


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == name or name.startswith(missing + "."):
            raise ServeError(
                f"cannot import module {name!r}: no module named {missing!r} on the path. "
                f"Check the spelling of {name!r}, and run from the directory that contains it "
                "(or pass --app-dir DIR)."
            ) from None
        raise ServeError(
            f"importing {name!r} failed: it imports {missing!r}, which is not installed. "
            f"Install it (pip install {missing.split('.')[0]}) in this environment "
            f"({sys.executable})."
        ) from exc
    except Exception as exc:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise ServeError(
            f"{detail}\nimporting {name!r} raised {exc!r} (traceback above): fix the error in "
            "that module."
        ) from None


def _looks_like_django_settings(module: Any) -> bool:
    return hasattr(module, "INSTALLED_APPS") and hasattr(module, "ROOT_URLCONF")


def _django_app(settings: str, server_kind: str, interface: Interface | None) -> Any:
    _import_module(settings)  # a clear error for a wrong settings path
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    if importlib.util.find_spec("django") is None:
        raise ServeError("Django is not installed: pip install django") from None
    # Django's own WSGI stack by default, on either kind of server: sync views run as they
    # do under any WSGI server, and on an ASGI server WsgiToAsgi wraps it.
    if interface in ("asgi3", "asgi2"):
        module, name = "django.core.asgi", "get_asgi_application"
    else:
        module, name = "django.core.wsgi", "get_wsgi_application"
    try:
        return _attr(module, name)()
    except Exception as exc:  # ImproperlyConfigured, an app's import error, ...
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise ServeError(
            f"{detail}\nDjango's {name}() failed for settings {settings!r}: {exc} "
            "(traceback above). Fix the settings or the app it names."
        ) from None


def _app_like_names(module: Any) -> list[str]:
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, type(sys)):
            continue
        try:
            kind = detect_interface(value)
        except Exception:  # not an app, or a proxy object (flask.request) that refuses access
            continue
        if kind != "asgi2" or name in ("app", "application"):
            names.append(name)
    return names


def load_target(
    target: str | None,
    *,
    django_settings: str | None = None,
    factory: bool = False,
    interface: Interface | None = None,
    server_kind: str = "asgi",
) -> Any:
    """Import and return the application named by ``target`` (``"module:attr"``).

    ``"module"`` alone takes ``module.application``, then ``module.app``; a
    Django settings module (it has ``INSTALLED_APPS`` and ``ROOT_URLCONF``)
    gives Django's handler. ``django_settings`` sets
    ``DJANGO_SETTINGS_MODULE`` first; with no ``target`` it gives Django's
    WSGI handler (``get_asgi_application()`` with ``interface="asgi3"``).
    ``factory`` calls the attribute with no arguments to get the app.

    :raises ServeError: the module cannot be imported, the attribute is
        missing, or the factory fails; the message names the fix.
    """
    if django_settings:
        if not target:
            return _django_app(django_settings, server_kind, interface)
        os.environ["DJANGO_SETTINGS_MODULE"] = django_settings
    if not target:
        raise ServeError(
            "nothing to serve: give the app as MODULE:ATTR (for example "
            "'asgibridge serve examples.flask_app:app'), or --django-settings mysite.settings"
        )
    module_name, _, attr = target.partition(":")
    if not module_name or (":" in target and not attr):
        raise ServeError(f"{target!r} is not MODULE:ATTR, e.g. 'examples.flask_app:app'")
    module = _import_module(module_name)
    if not attr:
        if _looks_like_django_settings(module) and not hasattr(module, "application"):
            return _django_app(module_name, server_kind, interface)
        for candidate in ("application", "app"):
            if hasattr(module, candidate):
                attr = candidate
                break
        else:
            raise ServeError(
                f"module {module_name!r} has no 'application' or 'app' attribute; name the app "
                f"as {module_name}:ATTR" + _suggest(module)
            )
    value: Any = module
    walked = module_name
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ServeError(
                f"{walked!r} has no attribute {part!r}: check the name after ':' in {target!r}"
                + _suggest(module)
            ) from None
        walked += ("." if walked != module_name else ":") + part
    if factory:
        try:
            value = value()
        except Exception as exc:
            detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            raise ServeError(
                f"{detail}\nthe app factory {target!r} raised {exc!r} (traceback above)"
            ) from None
    return value


def _suggest(module: Any) -> str:
    names = _app_like_names(module)
    if not names:
        return ""
    return f". App-like objects in {module.__name__!r}: " + ", ".join(sorted(names))


def build_app(
    app: Any,
    server_kind: str,
    *,
    interface: Interface | None = None,
    executor: str = "thread",
    lifespan: str = "auto",
) -> tuple[Any, str]:
    """Wrap ``app`` for a server of ``server_kind`` (``"asgi"`` or ``"wsgi"``).

    Returns the app to serve and a short description of what was done.

    :raises ServeError: the object is neither WSGI nor ASGI.
    """
    try:
        kind = interface or detect_interface(app)
    except TypeError as exc:
        raise ServeError(str(exc).replace("interface=", "--interface ")) from None
    if server_kind == "asgi":
        if kind == "wsgi":
            from .wsgi import WsgiToAsgi

            bridge = WsgiToAsgi(app, executor=cast(Literal["thread", "greenlet"], executor))
            return bridge, f"WSGI app, through WsgiToAsgi ({executor})"
        label = "ASGI 2 app, adapted to ASGI 3" if kind == "asgi2" else "ASGI app"
        return as_asgi3(app, kind), label
    if kind == "wsgi":
        return app, "WSGI app"
    if isinstance(app, Dispatcher):
        return app.as_wsgi(lifespan=lifespan), "Dispatcher, WSGI children direct"
    from .asgi import AsgiToWsgi

    mode = cast(Literal["auto", "on", "off"], lifespan)
    return AsgiToWsgi(as_asgi3(app, kind), lifespan=mode), "ASGI app, through AsgiToWsgi"


def _build_from_env(name: str) -> Any:
    raw = os.environ.get(_ENV)
    if not raw:
        raise AttributeError(
            f"asgibridge.cli.{name} exists only under 'asgibridge serve' (it is the app that "
            "command builds); serve your app with 'asgibridge serve MODULE:ATTR'"
        )
    cfg = json.loads(raw)
    if cfg["app_dir"] not in sys.path:
        sys.path.insert(0, cfg["app_dir"])
    app = load_target(
        cfg["target"],
        django_settings=cfg["django_settings"],
        factory=cfg["factory"],
        interface=cfg["interface"],
        server_kind=cfg["server_kind"],
    )
    built, _ = build_app(
        app,
        cfg["server_kind"],
        interface=cfg["interface"],
        executor=cfg["executor"],
        lifespan=cfg["lifespan"],
    )
    if cfg.get("no_lifespan"):
        built = _NoLifespan(built)
    return built


def __getattr__(name: str) -> Any:
    """``asgi`` / ``wsgi``: the app ``asgibridge serve`` built, for the server's import string."""
    if name not in ("asgi", "wsgi"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    app = _built.get(name)
    if app is None:
        app = _built[name] = _build_from_env(name)
    return app


class _NoLifespan:
    """Answers lifespan itself, so that the app never sees it (``--lifespan off``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


# ------------------------------------------------------------------ checks


def _require_server(server: str) -> None:
    module = SERVERS[server][1]
    if importlib.util.find_spec(module) is None:
        raise ServeError(
            f"the {server} server is not installed in this environment ({sys.executable}). "
            f"Install it with:  pip install 'asgibridge[{server}]'"
        )


def _claim_port(host: str, port: int) -> int:
    """Check that ``host:port`` can be bound; resolve port 0 to a free port."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(
            f"cannot resolve --host {host!r} ({exc}); use an IP such as 127.0.0.1"
        ) from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(
                    f"port {port} on {host} is already in use. Stop the process that holds it "
                    f"(find it with: lsof -iTCP:{port} -sTCP:LISTEN), or serve on another "
                    "port with --port N (--port 0 picks a free one)."
                ) from None
            if exc.errno == errno.EACCES:
                raise ServeError(
                    f"not allowed to bind {host}:{port} (ports below 1024 need privileges); "
                    "use --port 8000 or another port above 1023"
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ServeError(
                    f"--host {host} is not an address of this machine; use 127.0.0.1 or 0.0.0.0"
                ) from None
            raise
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ servers


def _has(native: Sequence[str], *flags: str) -> bool:
    return any(a == f or a.startswith(f + "=") for a in native for f in flags)


def _run_uvicorn(o: argparse.Namespace, target: str, native: list[str]) -> int:
    uvicorn_main = _attr("uvicorn.main", "main")

    args = [target, "--host", o.host, "--port", str(o.port), "--lifespan", o.lifespan]
    args += ["--interface", "asgi3"]
    if o.workers > 1:
        args += ["--workers", str(o.workers)]
    if o.root_path:
        args += ["--root-path", o.root_path]
    return _click(uvicorn_main, [*args, *native], "uvicorn")


def _run_hypercorn(o: argparse.Namespace, target: str, native: list[str]) -> int:
    hypercorn_main = _attr("hypercorn.__main__", "main")

    args = ["--bind", _hostport(o.host, o.port), "--workers", str(o.workers)]
    if o.root_path:
        args += ["--root-path", o.root_path]
    # hypercorn eval()s the name after ':' in the module, where __getattr__ is a plain function;
    # the "asgi:" mode stops it from wrapping anything itself.
    module, _, name = target.partition(":")
    return hypercorn_main([*args, *native, f"asgi:{module}:__getattr__({name!r})"]) or 0


def _run_granian(o: argparse.Namespace, target: str, native: list[str]) -> int:
    granian_cli = _attr("granian.cli", "cli")

    interface = "asginl" if o.lifespan == "off" else "asgi"
    args = [target, "--interface", interface, "--host", o.host, "--port", str(o.port)]
    args += ["--workers", str(o.workers)]
    if o.root_path:
        args += ["--url-path-prefix", o.root_path]
    return _click(granian_cli, [*args, *native], "granian")


def _run_daphne(o: argparse.Namespace, target: str, native: list[str]) -> int:
    command_line_interface = _attr("daphne.cli", "CommandLineInterface")

    if o.workers > 1:
        raise ServeError(
            "daphne runs one process; drop --workers, or use --server uvicorn/hypercorn/granian "
            "for several worker processes"
        )
    if o.lifespan != "off":
        # daphne sends no lifespan events: run them here, on daphne's loop, when its reactor
        # starts (before it serves) and before it stops.
        lifespan = DaphneLifespan(_built["asgi"], o.lifespan)
        _built["asgi"] = lifespan
        reactor = _attr("twisted.internet", "reactor")  # daphne.cli installed the asyncio one
        reactor.callWhenRunning(lifespan.schedule_startup, reactor)
        reactor.addSystemEventTrigger("before", "shutdown", lifespan.shutdown_deferred)
    args = ["--bind", o.host, "--port", str(o.port)]
    if o.root_path:
        args += ["--root-path", o.root_path]
    command_line_interface().run([*args, *native, target])
    failed = getattr(_built["asgi"], "failed", None)
    if failed is not None:
        print(
            f"asgibridge serve: error: the app's lifespan startup failed ({failed}): fix the "
            "startup code, or pass --lifespan off if the app does not need it",
            file=sys.stderr,
        )
        return 3
    return 0


def _run_gunicorn(o: argparse.Namespace, target: str, native: list[str]) -> int:
    wsgi_application = _attr("gunicorn.app.wsgiapp", "WSGIApplication")

    args = ["--bind", _hostport(o.host, o.port), "--workers", str(o.workers)]
    if not _has(native, "-k", "--worker-class") and not _has(native, "--threads"):
        args += ["--worker-class", "gthread", "--threads", "8"]
    if o.root_path:
        os.environ["SCRIPT_NAME"] = o.root_path  # gunicorn strips it from PATH_INFO

    def load_config(self: Any) -> None:
        # Lifespan startup in each worker as it boots, not at its first request: a failed
        # startup then stops the worker with gunicorn's boot error, and gunicorn halts.
        wsgi_application.load_config(self)
        previous = self.cfg.post_worker_init

        def post_worker_init(worker: Any) -> None:
            previous(worker)
            start_bridge(worker.wsgi)

        self.cfg.set("post_worker_init", post_worker_init)

    application = type("AsgibridgeGunicorn", (wsgi_application,), {"load_config": load_config})
    saved = sys.argv
    sys.argv = ["gunicorn", *args, *native, target]
    try:
        application("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn").run()
    finally:
        sys.argv = saved
    return 0


def start_bridge(app: Any) -> None:
    """Run lifespan startup now for an app built for a WSGI server (no-op for a plain WSGI app).

    :raises LifespanError: startup failed (the cause is logged and chained).
    """
    from .asgi import AsgiToWsgi
    from .dispatch import WsgiDispatcher

    if isinstance(app, WsgiDispatcher):
        app = app.bridge
    if isinstance(app, AsgiToWsgi):
        app.start()


def _run_waitress(o: argparse.Namespace, target: str, native: list[str]) -> int:
    waitress_run = _attr("waitress.runner", "run")

    if o.workers > 1:
        raise ServeError(
            "waitress runs one process (with threads: -- --threads N); drop --workers, or use "
            "--server gunicorn for several worker processes"
        )
    args = ["--listen", _hostport(o.host, o.port)]
    if o.root_path:
        args += ["--url-prefix", o.root_path]
    _start_or_fail(_built["wsgi"])  # one process: startup before the first request
    if hasattr(signal, "SIGTERM") and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # waitress ends only on Ctrl-C; without this, SIGTERM (docker stop, systemd) would kill
        # the process before the bridge's lifespan shutdown runs at exit.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return waitress_run(["waitress-serve", *args, *native, target]) or 0


def _attr(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


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


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _start_or_fail(app: Any) -> None:
    from .errors import LifespanError

    try:
        start_bridge(app)
    except LifespanError as exc:
        raise ServeError(
            f"the app's lifespan startup failed ({exc}; traceback logged above): fix the "
            "startup code, or pass --lifespan off if the app does not need it"
        ) from None


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _click(command: Any, args: list[str], prog: str) -> int:
    try:
        command.main(args=args, prog_name=prog, standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


_RUNNERS = {
    "uvicorn": _run_uvicorn,
    "hypercorn": _run_hypercorn,
    "granian": _run_granian,
    "daphne": _run_daphne,
    "gunicorn": _run_gunicorn,
    "waitress": _run_waitress,
}


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
        return _serve(o, native)
    except ServeError as exc:
        print(f"asgibridge serve: error: {exc}", file=sys.stderr)
        return 2


def _serve(o: argparse.Namespace, native: list[str]) -> int:
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
        built = _NoLifespan(built)
    _note_double_bridge(app, server_kind, o.server)
    if o.executor != "thread" and "WsgiToAsgi" not in how:
        print(
            "asgibridge serve: note: --executor applies to a WSGI app served on an ASGI server, "
            "so it is ignored here (a Dispatcher's WSGI children take "
            "Dispatcher(..., wsgi_options={'executor': 'greenlet'}))",
            file=sys.stderr,
        )
    o.port = _claim_port(o.host, o.port)
    name = "asgi" if server_kind == "asgi" else "wsgi"
    _built[name] = built
    os.environ[_ENV] = json.dumps(
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
    return _RUNNERS[o.server](o, f"asgibridge.cli:{name}", native)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
