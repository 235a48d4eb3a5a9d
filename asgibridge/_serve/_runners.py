"""``asgibridge serve``, step 4: claim the port and run each server's own entry point.

Theory of operation
-------------------
:data:`SERVERS` names the supported servers and the kind of app each
serves; :data:`RUNNERS` maps each to a function that translates the
command's options (``--host``, ``--port``, ``--workers``, ``--lifespan``,
``--root-path``) into that server's own command line, appends the native
arguments given after ``--`` unchanged, and runs the server in this process.
The server imports the app by the import string it is given
(``asgibridge.cli:asgi`` or ``asgibridge.cli:wsgi``), which resolves to the
entry of ``built``, the dict that ``asgibridge.cli`` holds.

Servers differ in what they do for lifespan, and each runner makes up the
difference: daphne sends no lifespan events (:class:`DaphneLifespan` plays
the server's part on its reactor), gunicorn runs startup in each worker as
it boots (``post_worker_init``), waitress runs it before serving and turns
SIGTERM into a clean exit so that shutdown runs.

:func:`claim_port` checks the address before any of this, so that a port in
use is one clear :class:`ServeError` instead of a server's traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._daphne import DaphneLifespan
from ._target import ServeError, attr

__all__ = ["RUNNERS", "SERVERS", "claim_port", "start_bridge"]

#: Supported servers: name -> (kind it serves, module to import, pip extra).
SERVERS: dict[str, tuple[str, str]] = {
    "uvicorn": ("asgi", "uvicorn"),
    "hypercorn": ("asgi", "hypercorn"),
    "granian": ("asgi", "granian"),
    "daphne": ("asgi", "daphne"),
    "gunicorn": ("wsgi", "gunicorn"),
    "waitress": ("wsgi", "waitress"),
}


def claim_port(host: str, port: int) -> int:
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


def start_bridge(app: Any) -> None:
    """Run lifespan startup now for an app built for a WSGI server (no-op for a plain WSGI app).

    :raises LifespanError: startup failed (the cause is logged and chained).
    """
    from ..asgi import AsgiToWsgi
    from ..dispatch import WsgiDispatcher

    if isinstance(app, WsgiDispatcher):
        app = app.bridge
    if isinstance(app, AsgiToWsgi):
        app.start()


# ------------------------------------------------------------------ ASGI servers


def _run_uvicorn(
    o: argparse.Namespace, target: str, native: list[str], built: dict[str, Any]
) -> int:
    uvicorn_main = attr("uvicorn.main", "main")

    args = [target, "--host", o.host, "--port", str(o.port), "--lifespan", o.lifespan]
    args += ["--interface", "asgi3"]
    if o.workers > 1:
        args += ["--workers", str(o.workers)]
    if o.root_path:
        args += ["--root-path", o.root_path]
    return _click(uvicorn_main, [*args, *native], "uvicorn")


def _run_hypercorn(
    o: argparse.Namespace, target: str, native: list[str], built: dict[str, Any]
) -> int:
    hypercorn_main = attr("hypercorn.__main__", "main")

    args = ["--bind", _hostport(o.host, o.port), "--workers", str(o.workers)]
    if o.root_path:
        args += ["--root-path", o.root_path]
    # hypercorn eval()s the name after ':' in the module, where __getattr__ is a plain function;
    # the "asgi:" mode stops it from wrapping anything itself.
    module, _, name = target.partition(":")
    return hypercorn_main([*args, *native, f"asgi:{module}:__getattr__({name!r})"]) or 0


def _run_granian(
    o: argparse.Namespace, target: str, native: list[str], built: dict[str, Any]
) -> int:
    granian_cli = attr("granian.cli", "cli")

    interface = "asginl" if o.lifespan == "off" else "asgi"
    args = [target, "--interface", interface, "--host", o.host, "--port", str(o.port)]
    args += ["--workers", str(o.workers)]
    if o.root_path:
        args += ["--url-path-prefix", o.root_path]
    return _click(granian_cli, [*args, *native], "granian")


def _run_daphne(
    o: argparse.Namespace, target: str, native: list[str], built: dict[str, Any]
) -> int:
    command_line_interface = attr("daphne.cli", "CommandLineInterface")

    if o.workers > 1:
        raise ServeError(
            "daphne runs one process; drop --workers, or use --server uvicorn/hypercorn/granian "
            "for several worker processes"
        )
    if o.lifespan != "off":
        # daphne sends no lifespan events: run them here, on daphne's loop, when its reactor
        # starts (before it serves) and before it stops.
        lifespan = DaphneLifespan(built["asgi"], o.lifespan)
        built["asgi"] = lifespan
        reactor = attr("twisted.internet", "reactor")  # daphne.cli installed the asyncio one
        reactor.callWhenRunning(lifespan.schedule_startup, reactor)
        reactor.addSystemEventTrigger("before", "shutdown", lifespan.shutdown_deferred)
    args = ["--bind", o.host, "--port", str(o.port)]
    if o.root_path:
        args += ["--root-path", o.root_path]
    command_line_interface().run([*args, *native, target])
    failed = getattr(built["asgi"], "failed", None)
    if failed is not None:
        print(
            f"asgibridge serve: error: the app's lifespan startup failed ({failed}): fix the "
            "startup code, or pass --lifespan off if the app does not need it",
            file=sys.stderr,
        )
        return 3
    return 0


# ------------------------------------------------------------------ WSGI servers


def _run_gunicorn(
    o: argparse.Namespace, target: str, native: list[str], built: dict[str, Any]
) -> int:
    wsgi_application = attr("gunicorn.app.wsgiapp", "WSGIApplication")

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


def _run_waitress(
    o: argparse.Namespace, target: str, native: list[str], built: dict[str, Any]
) -> int:
    waitress_run = attr("waitress.runner", "run")

    if o.workers > 1:
        raise ServeError(
            "waitress runs one process (with threads: -- --threads N); drop --workers, or use "
            "--server gunicorn for several worker processes"
        )
    args = ["--listen", _hostport(o.host, o.port)]
    if o.root_path:
        args += ["--url-prefix", o.root_path]
    _start_or_fail(built["wsgi"])  # one process: startup before the first request
    if hasattr(signal, "SIGTERM") and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # waitress ends only on Ctrl-C; without this, SIGTERM (docker stop, systemd) would kill
        # the process before the bridge's lifespan shutdown runs at exit.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return waitress_run(["waitress-serve", *args, *native, target]) or 0


# ------------------------------------------------------------------ helpers


def _has(native: Sequence[str], *flags: str) -> bool:
    return any(a == f or a.startswith(f + "=") for a in native for f in flags)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _start_or_fail(app: Any) -> None:
    from ..errors import LifespanError

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


#: One runner per entry of :data:`SERVERS`: ``runner(options, import_string, native, built)``.
RUNNERS: dict[str, Callable[[argparse.Namespace, str, list[str], dict[str, Any]], int]] = {
    "uvicorn": _run_uvicorn,
    "hypercorn": _run_hypercorn,
    "granian": _run_granian,
    "daphne": _run_daphne,
    "gunicorn": _run_gunicorn,
    "waitress": _run_waitress,
}
