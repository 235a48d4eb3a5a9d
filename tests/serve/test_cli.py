"""``asgibridge serve``: loading, detection, wrapping, errors that name the fix, and real servers.

The end-to-end tests run ``python -m asgibridge serve ... --port 0`` (or the
``asgibridge`` console script) as a subprocess, read the URL from its first
line, and talk to it over loopback with httpx. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgibridge import AsgiToWsgi, Dispatcher, WsgiToAsgi, cli
from asgibridge.cli import ServeError, build_app, load_target
from asgibridge.dispatch import WsgiDispatcher
from tests.support import ROOT
from tests.support.asgi_servers import Process

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def _gunicorn_native() -> list[str]:
    """gunicorn 25.1+ opens a control socket at a fixed path in $HOME; parallel runs fight."""
    from tests.support.wsgi_servers import _NO_CONTROL_SOCKET

    return ["--", *_NO_CONTROL_SOCKET] if _NO_CONTROL_SOCKET else []


# ------------------------------------------------------------------ a subprocess server


@contextlib.contextmanager
def serve_cli(
    *args: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    script: bool = False,
    final_log: list[str] | None = None,
) -> Iterator[Process]:
    """Run ``asgibridge serve ARGS --port 0``; yield once the URL answers HTTP.

    After the server has stopped, its whole output is appended to ``final_log``.
    """
    if "--" in args:
        at = args.index("--")
        ours, native = list(args[:at]), list(args[at:])
    else:
        ours, native = list(args), []
    command = (
        [str(Path(sys.executable).parent / "asgibridge")]
        if script
        else [sys.executable, "-m", "asgibridge"]
    )
    full_env = {k: v for k, v in os.environ.items() if k != "ASGIBRIDGE_SERVE"}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    with tempfile.NamedTemporaryFile(prefix="asgibridge-serve-", suffix=".log") as logf:
        log = Path(logf.name)
        proc = subprocess.Popen(
            [*command, "serve", *ours, "--port", "0", *native],
            cwd=cwd,
            env=full_env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = _wait_url(proc, log)
            yield Process(url, proc, log)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:  # pragma: no cover - diagnostics
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
                raise AssertionError(
                    f"the server did not stop on SIGTERM:\n{log.read_text()}"
                ) from None
            if final_log is not None:
                final_log.append(log.read_text(errors="replace"))


def _wait_url(proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    url = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"asgibridge serve exited with {proc.returncode}:\n{log.read_text()}"
            )
        text = log.read_text(errors="replace")
        if not url and " at http://" in text:
            line = next(ln for ln in text.splitlines() if " at http://" in ln)
            url = line.rsplit(" at ", 1)[1].strip()
        if url:
            host_port = url.split("//", 1)[1].split("/", 1)[0]
            host, port = host_port.rsplit(":", 1)
            try:
                with socket.create_connection((host, int(port)), timeout=1.0) as conn:
                    conn.sendall(b"GET /__ready__ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if conn.recv(16):
                        return url
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError(
        f"asgibridge serve did not answer within {START_TIMEOUT}s:\n{log.read_text()}"
    )


def run_cli(
    *args: str, cwd: Path = ROOT, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ASGIBRIDGE_SERVE"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "asgibridge", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def base(url: str) -> str:
    """The server's address without the advertised root path."""
    scheme, rest = url.split("//", 1)
    return f"{scheme}//{rest.split('/', 1)[0]}"


# ------------------------------------------------------------------ loading and errors


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory of throwaway modules, first on sys.path, forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("cli_"):
            del sys.modules[name]


def write(app_dir: Path, name: str, source: str) -> None:
    (app_dir / f"{name}.py").write_text(textwrap.dedent(source))


def test_wrong_import_path_names_the_fix() -> None:
    with pytest.raises(ServeError, match=r"cannot import module 'no_such_mod'.*--app-dir"):
        load_target("no_such_mod:app")
    with pytest.raises(ServeError, match=r"cannot import module 'examples.flask_ap'"):
        load_target("examples.flask_ap:app")


def test_missing_dependency_inside_the_app_names_it(app_dir: Path) -> None:
    write(app_dir, "cli_dep", "import cli_not_installed_pkg\napp = None\n")
    with pytest.raises(
        ServeError, match=r"imports 'cli_not_installed_pkg', which is not installed"
    ):
        load_target("cli_dep:app")


def test_an_app_that_raises_at_import_shows_its_traceback(app_dir: Path) -> None:
    write(app_dir, "cli_raises", "raise ValueError('bad config')\n")
    with pytest.raises(ServeError, match=r"(?s)Traceback.*bad config.*fix the error"):
        load_target("cli_raises:app")


def test_missing_attribute_lists_the_apps_that_are_there() -> None:
    with pytest.raises(ServeError) as info:
        load_target("examples.flask_app:ap")
    text = str(info.value)
    assert "has no attribute 'ap'" in text
    assert "app, asgi_app" in text


def test_module_alone_takes_application_then_app(app_dir: Path) -> None:
    write(app_dir, "cli_both", "def application(e, s): return []\ndef app(e, s): return []\n")
    write(app_dir, "cli_app", "def app(e, s): return []\n")
    write(app_dir, "cli_none", "x = 1\n")
    assert load_target("cli_both").__name__ == "application"
    assert load_target("cli_app").__name__ == "app"
    with pytest.raises(ServeError, match="no 'application' or 'app'"):
        load_target("cli_none")


def test_factory_is_called(app_dir: Path) -> None:
    write(app_dir, "cli_factory", "def make():\n    def app(e, s): return []\n    return app\n")
    assert load_target("cli_factory:make", factory=True).__name__ == "app"


def test_neither_wsgi_nor_asgi_names_the_fix() -> None:
    with pytest.raises(ServeError, match="not callable"):
        build_app(42, "asgi")
    with pytest.raises(ServeError, match="--interface"):
        build_app(lambda *a: None, "asgi")


def test_wrapping_follows_the_server_kind() -> None:
    from examples import flask_app, strangler, wsgi_hello

    wrapped, how = build_app(flask_app.app, "asgi", executor="greenlet")
    assert isinstance(wrapped, WsgiToAsgi) and wrapped.executor == "greenlet"
    assert "WsgiToAsgi" in how
    assert build_app(wsgi_hello.app, "wsgi")[0] is wsgi_hello.app
    assert build_app(wsgi_hello.native_asgi, "asgi")[0] is wsgi_hello.native_asgi
    bridged, _ = build_app(wsgi_hello.native_asgi, "wsgi", lifespan="off")
    assert isinstance(bridged, AsgiToWsgi) and bridged.lifespan == "off"
    assert isinstance(strangler.app, Dispatcher)
    assert isinstance(build_app(strangler.app, "wsgi")[0], WsgiDispatcher)
    assert build_app(strangler.app, "asgi")[0] is strangler.app
    # --interface overrides detection
    forced, _ = build_app(wsgi_hello.app, "asgi", interface="wsgi")
    assert isinstance(forced, WsgiToAsgi)


def test_missing_server_gives_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = cli.importlib.util.find_spec

    def find_spec(name: str, *a: Any) -> Any:
        return None if name == "granian" else real(name, *a)

    monkeypatch.setattr(cli.importlib.util, "find_spec", find_spec)
    assert cli.main(["serve", "examples.flask_app:app", "--server", "granian"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'asgibridge[granian]'" in err


def test_port_in_use_names_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        assert cli.main(["serve", "examples.flask_app:app", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in err
    assert "--port" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(["--workers", "0"], "--workers must be 1 or more", id="workers"),
        pytest.param(["--root-path", "app/"], "--root-path must look like", id="root-path"),
        pytest.param(["--server", "daphne", "--workers", "2"], "daphne runs one", id="daphne"),
        pytest.param(
            ["--server", "waitress", "--workers", "2"], "waitress runs one", id="waitress"
        ),
    ],
)
def test_bad_options_name_the_fix(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_built", {})
    monkeypatch.delenv("ASGIBRIDGE_SERVE", raising=False)
    assert cli.main(["serve", "examples.wsgi_hello:app", "--port", "0", *args]) == 2
    assert words in capsys.readouterr().err
    os.environ.pop("ASGIBRIDGE_SERVE", None)


def test_the_import_string_outside_serve_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_built", {})
    monkeypatch.delenv("ASGIBRIDGE_SERVE", raising=False)
    with pytest.raises(AttributeError, match="asgibridge serve MODULE:ATTR"):
        cli.asgi  # noqa: B018


def test_errors_reach_the_terminal_with_status_2() -> None:
    done = run_cli("serve", "examples.flask_app:nope", "--port", "0")
    assert done.returncode == 2
    assert "asgibridge serve: error:" in done.stderr and "'nope'" in done.stderr
    assert "Traceback" not in done.stderr


# ------------------------------------------------------------------ real servers


def test_console_script_exists_and_helps() -> None:
    script = Path(sys.executable).parent / "asgibridge"
    assert script.exists(), "reinstall: pip install -e '.[test]' (pyproject [project.scripts])"
    done = subprocess.run(
        [str(script), "serve", "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    for option in (
        "--server",
        "--executor",
        "--workers",
        "--lifespan",
        "--root-path",
        "--interface",
    ):
        assert option in done.stdout


@pytest.mark.parametrize("executor", [[], ["--executor", "greenlet"]], ids=["default", "greenlet"])
def test_flask_on_uvicorn_via_serve(executor: list[str]) -> None:
    with serve_cli("examples.flask_app:app", *executor) as served:
        assert f"({executor[-1] if executor else 'thread'})" in served.log()
        assert "through WsgiToAsgi" in served.log() and "on uvicorn" in served.log()
        with httpx.Client(base_url=served.url, timeout=10) as client:
            assert client.get("/").text == "Hello, World!"
            assert client.post("/echo", content=b"x" * 100_000).content == b"x" * 100_000


def test_fastapi_on_gunicorn_via_serve() -> None:
    with serve_cli(
        "examples.fastapi_app:app", "--server", "gunicorn", *_gunicorn_native(), script=True
    ) as served:
        assert "through AsgiToWsgi" in served.log()
        with httpx.Client(base_url=served.url, timeout=10) as client:
            item = client.get("/items/3").json()
            assert item["name"] == "item 3"  # the lifespan's database object: startup ran
            assert client.get("/count", params={"to": 3}).text == "0\n1\n2\n"


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_c1_strangler_dispatcher_on_uvicorn_and_gunicorn(server: str) -> None:
    native = _gunicorn_native() if server == "gunicorn" else []
    with serve_cli("examples.strangler:app", "--server", server, *native) as served:
        with httpx.Client(base_url=served.url, timeout=10) as client:
            assert client.get("/").text == "legacy home"
            assert client.get("/where").json() == {
                "app": "flask",
                "script_name": "",
                "path_info": "/where",
            }
            item = client.get("/api/v2/items/3").json()
            assert item == {
                "app": "fastapi",
                "item_id": 3,
                "name": "item 3",
                "root_path": "/api/v2",
            }
            assert client.get("/api/v2x").status_code == 404  # Flask's 404: not a segment match
            assert "Not Found" in client.get("/api/v2/nope").text


@pytest.mark.parametrize(
    ("server", "prefix"),
    [
        # uvicorn: the proxy strips the prefix, the server adds root_path
        pytest.param("uvicorn", "", id="uvicorn"),
        # gunicorn: the proxy keeps the prefix, SCRIPT_NAME takes it off PATH_INFO
        pytest.param("gunicorn", "/app", id="gunicorn"),
    ],
)
def test_c1_root_path_reaches_every_child(server: str, prefix: str) -> None:
    native = _gunicorn_native() if server == "gunicorn" else []
    with serve_cli(
        "examples.strangler:app", "--server", server, "--root-path", "/app", *native
    ) as served:
        assert served.url.endswith("/app")
        with httpx.Client(base_url=base(served.url), timeout=10) as client:
            where = client.get(f"{prefix}/where").json()
            assert (where["script_name"], where["path_info"]) == ("/app", "/where")
            item = client.get(f"{prefix}/api/v2/items/1").json()
            assert item["root_path"] == "/app/api/v2"


@pytest.mark.parametrize("server", ["hypercorn", "granian", "daphne", "waitress"])
def test_every_other_server_serves_the_dispatcher(server: str) -> None:
    with serve_cli("examples.strangler:app", "--server", server) as served:
        assert f"on {server}" in served.log()
        with httpx.Client(base_url=served.url, timeout=10) as client:
            assert client.get("/where").json()["path_info"] == "/where"
            # daphne sends no lifespan: asgibridge serve runs it on daphne's loop
            assert client.get("/api/v2/items/3").json()["name"] == "item 3"


def test_several_workers_rebuild_the_app_from_the_environment() -> None:
    """uvicorn spawns fresh worker processes: each rebuilds the app from ASGIBRIDGE_SERVE."""
    with serve_cli("examples.fastapi_app:app", "--workers", "2") as s:
        with httpx.Client(base_url=s.url, timeout=10) as client:
            pids = {
                client.get("/items/1", headers={"connection": "close"}).json()["pid"]
                for _ in range(20)
            }
        assert pids and os.getpid() not in pids


def test_native_options_pass_through_after_double_dash() -> None:
    with serve_cli("examples.wsgi_hello:app", "--", "--header", "x-passed:through") as served:
        response = httpx.get(served.url + "/", timeout=10)
        assert response.text == "Hello, World!"
        assert response.headers["x-passed"] == "through"


def test_asgi2_app_on_uvicorn(app_dir: Path) -> None:
    write(
        app_dir,
        "cli_asgi2",
        """
        class App:
            def __init__(self, scope):
                self.scope = scope

            async def __call__(self, receive, send):
                if self.scope["type"] != "http":
                    return
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"asgi2"})
        """,
    )
    with serve_cli(
        "cli_asgi2:App", "--lifespan", "off", env={"PYTHONPATH": f"{app_dir}:{ROOT}"}
    ) as s:
        assert "ASGI 2 app" in s.log()
        assert httpx.get(s.url + "/", timeout=10).text == "asgi2"


LIFESPAN_APP = """
import sys


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        print("STARTUP", file=sys.stderr, flush=True)
        scope["state"]["greeting"] = "from startup"
        await send({"type": "lifespan.startup.complete"})
        await receive()
        print("SHUTDOWN", file=sys.stderr, flush=True)
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["state"]["greeting"].encode()})
"""


@pytest.mark.parametrize("server", ["daphne", "gunicorn", "waitress"])
def test_a1_lifespan_runs_on_every_kind_of_server(app_dir: Path, server: str) -> None:
    """Startup before the first request, state in each request, shutdown when stopped.

    daphne sends no lifespan events itself; asgibridge serve runs them on its loop. On
    gunicorn and waitress AsgiToWsgi runs them (uvicorn, hypercorn, granian: their own).
    """
    write(app_dir, "cli_lifespan", LIFESPAN_APP)
    native = _gunicorn_native() if server == "gunicorn" else []
    final: list[str] = []
    with serve_cli(
        "cli_lifespan:app",
        "--server",
        server,
        *native,
        env={"PYTHONPATH": f"{app_dir}:{ROOT}"},
        final_log=final,
    ) as served:
        assert "STARTUP" in served.log()
        assert httpx.get(served.url + "/", timeout=10).text == "from startup"
    assert "SHUTDOWN" in final[0]


FAILING_STARTUP = """
from asgibridge import Dispatcher


async def broken(scope, receive, send):
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "the database is unreachable"})


def legacy(environ, start_response):
    start_response("200 OK", [])
    return [b"legacy"]


app = Dispatcher({"/api": broken}, default=legacy)
"""


@pytest.mark.parametrize("server", ["uvicorn", "daphne", "gunicorn", "waitress"])
def test_a1_a_failed_dispatcher_startup_stops_the_server_loudly(app_dir: Path, server: str) -> None:
    write(app_dir, "cli_broken", FAILING_STARTUP)
    env = {k: v for k, v in os.environ.items() if k != "ASGIBRIDGE_SERVE"}
    env["PYTHONPATH"] = f"{app_dir}:{ROOT}"
    native = ["--port", "0", *(_gunicorn_native() if server == "gunicorn" else [])]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "asgibridge",
            "serve",
            "cli_broken:app",
            "--server",
            server,
            *native,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "the database is unreachable" in done.stdout + done.stderr


DJANGO_SETTINGS = """
SECRET_KEY = "test"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "cli_site.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
"""

DJANGO_URLS = """
from django.http import HttpResponse
from django.urls import path


def hello(request):
    return HttpResponse(f"django {request.META['SCRIPT_NAME']!r} {request.path_info}")


urlpatterns = [path("hello", hello)]
"""


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["cli_site.settings"], id="settings-as-target"),
        pytest.param(
            ["--django-settings", "cli_site.settings", "--interface", "asgi3"], id="asgi-handler"
        ),
    ],
)
def test_a_django_project_from_its_settings_module(tmp_path: Path, args: list[str]) -> None:
    pytest.importorskip("django")
    site = tmp_path / "cli_site"
    site.mkdir()
    (site / "__init__.py").write_text("")
    (site / "settings.py").write_text(DJANGO_SETTINGS)
    (site / "urls.py").write_text(DJANGO_URLS)
    with serve_cli(*args, "--app-dir", str(tmp_path)) as served:
        text = httpx.get(served.url + "/hello", timeout=10).text
        assert text == "django '' /hello"


def test_a_bridge_served_on_the_other_kind_of_server_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from examples import fastapi_app

    cli._note_double_bridge(fastapi_app.wsgi_app, "asgi", "uvicorn")
    err = capsys.readouterr().err
    assert "already a bridge around the ASGI app" in err
    cli._note_double_bridge(fastapi_app.app, "asgi", "uvicorn")
    assert capsys.readouterr().err == ""
