"""Dispatcher: prefix matching, child paths (C1), lifespan fan-out, WebSocket, the WSGI face.

Everything here is driven in-process; ``tests/serve/test_cli.py`` serves the
strangler example through real uvicorn and gunicorn, and
``test_dispatch_websocket.py`` runs WebSockets through real uvicorn and hypercorn.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from asgibridge import AsgiToWsgi, Dispatcher, WsgiToAsgi
from asgibridge.dispatch import WsgiDispatcher, as_asgi3, detect_interface
from tests.support.drivers import asgi_call, wsgi_call
from tests.support.scopes import make_scope

pytestmark = pytest.mark.anyio

Message = dict[str, Any]


# ------------------------------------------------------------------ apps


def make_asgi(name: str, seen: list[Any] | None = None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan here")
        if seen is not None:
            seen.append(dict(scope))
        if scope["type"] == "websocket":
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": name})
            await send({"type": "websocket.close", "code": 1000})
            return
        body = f"{name} {scope['root_path']} {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    app.__name__ = name
    return app


def make_wsgi(name: str, seen: list[Any] | None = None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if seen is not None:
            seen.append((dict(environ), threading.get_ident()))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{name} {environ['SCRIPT_NAME']} {environ['PATH_INFO']}".encode("latin-1")]

    app.__name__ = name
    return app


def http_scope(path: str, root_path: str = "", raw_path: bytes | None = None) -> Message:
    return make_scope(
        path=path,
        raw_path=raw_path if raw_path is not None else path.encode(),
        root_path=root_path,
        headers=[(b"host", b"test")],
        client=("127.0.0.1", 1234),
        server=("127.0.0.1", 80),
    )


async def call(app: Any, scope: Message, inbox: list[Message] | None = None) -> list[Message]:
    messages = inbox or [{"type": "http.request", "body": b"", "more_body": False}]
    result = await asgi_call(app, scope, inbox=messages, then="disconnect", timeout=None)
    return result.messages


def body_of(sent: list[Message]) -> str:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode(
        "latin-1"
    )


# ------------------------------------------------------------------ detection


async def _asgi3(scope: Any, receive: Any, send: Any) -> None:
    pass


def _asgi2(scope: Any) -> Any:
    return _asgi3


class _Asgi2Class:
    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        pass


class _WsgiClass:
    """PEP 3333's application class: the instance is the response iterable."""

    def __init__(self, environ: Any, start_response: Any) -> None:
        start_response("200 OK", [])

    def __iter__(self) -> Any:
        yield b"class"


class _Asgi3Object:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


class _WsgiObject:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


def _detect_cases() -> list[Any]:
    from fastapi import FastAPI
    from flask import Flask

    return [
        pytest.param(make_wsgi("w"), "wsgi", id="wsgi-function"),
        pytest.param(_WsgiObject(), "wsgi", id="wsgi-object"),
        pytest.param(Flask("t"), "wsgi", id="flask"),
        pytest.param(AsgiToWsgi(_asgi3), "wsgi", id="AsgiToWsgi"),
        pytest.param(_asgi3, "asgi3", id="asgi3-function"),
        pytest.param(_Asgi3Object(), "asgi3", id="asgi3-object"),
        pytest.param(functools.partial(_asgi3), "asgi3", id="asgi3-partial"),
        pytest.param(FastAPI(), "asgi3", id="fastapi"),
        pytest.param(WsgiToAsgi(make_wsgi("w")), "asgi3", id="WsgiToAsgi"),
        pytest.param(Dispatcher({}), "asgi3", id="Dispatcher"),
        pytest.param(_WsgiClass, "wsgi", id="wsgi-class"),
        pytest.param(_asgi2, "asgi2", id="asgi2-function"),
        pytest.param(_Asgi2Class, "asgi2", id="asgi2-class"),
    ]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(("app", "kind"), _detect_cases())
async def test_detect_interface(app: Any, kind: str) -> None:
    assert detect_interface(app) == kind


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(
    ("obj", "words"),
    [
        pytest.param(42, "not callable", id="not-callable"),
        pytest.param(lambda *a: None, "interface=", id="varargs"),
        pytest.param(lambda a, b, c, d: None, "4 required positional", id="four-args"),
        pytest.param(lambda: None, "0 required positional", id="no-args"),
    ],
)
async def test_detect_interface_refuses_with_the_fix(obj: Any, words: str) -> None:
    with pytest.raises(TypeError, match=words):
        detect_interface(obj)


class _NoSignature:
    __signature__ = 1  # inspect.signature() raises TypeError: nothing to read

    def __call__(self, scope: Any) -> Any:
        return _asgi3


class _Methods:
    def wsgi(self, environ: Any, start_response: Any) -> list[bytes]:
        return []

    async def asgi3(self, scope: Any, receive: Any, send: Any) -> None:
        pass

    def asgi2(self, scope: Any) -> Any:
        return _asgi3


def _agreement_cases() -> list[Any]:
    m = _Methods()
    undetectable = [
        pytest.param(lambda *a: None, id="varargs"),
        pytest.param(_NoSignature(), id="no-signature"),
        pytest.param(lambda: None, id="no-args"),
        pytest.param(lambda a, b, c, d: None, id="four-args"),
    ]
    bound = [
        pytest.param(m.wsgi, id="wsgi-method"),
        pytest.param(m.asgi3, id="asgi3-method"),
        pytest.param(m.asgi2, id="asgi2-method"),
        pytest.param(functools.partial(_asgi2), id="asgi2-partial"),
    ]
    detected = [pytest.param(c.values[0], id=c.id) for c in _detect_cases()]
    return [*detected, *bound, *undetectable]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("app", _agreement_cases())
async def test_detect_interface_and_asgi_to_wsgi_read_apps_alike(app: Any) -> None:
    """One signature reading, two policies (asgibridge._interface).

    Where detect_interface answers, AsgiToWsgi's lenient is_asgi2 agrees with it,
    except that any class is ASGI 2 to AsgiToWsgi (it is never given WSGI apps);
    where detect_interface refuses, is_asgi2 reads the app as ASGI 3 only if the
    signature does not say, and ASGI 2 never.
    """
    from asgibridge._interface import is_asgi2

    try:
        kind = detect_interface(app)
    except TypeError:
        assert is_asgi2(app) is False
        return
    if isinstance(app, type) and kind == "wsgi":
        assert is_asgi2(app) is True
        return
    assert is_asgi2(app) is (kind == "asgi2")


async def test_asgi2_app_is_adapted(anyio_backend: Any) -> None:
    class App:
        def __init__(self, scope: Any) -> None:
            self.scope = scope

        async def __call__(self, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": self.scope["path"].encode()})

    sent = await call(as_asgi3(App), http_scope("/x"))
    assert body_of(sent) == "/x"
    sent = await call(Dispatcher({"/a": App}), http_scope("/a/y"))
    assert body_of(sent) == "/a/y"


# ------------------------------------------------------------------ matching


MOUNTS = ["/api", "/api/v2", "/static/", "/caf\u00e9", "/x/y/z", "/x"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api", "/api"),
        ("/api/", "/api"),
        ("/api/users", "/api"),
        ("/apix", "default"),
        ("/api/v2", "/api/v2"),
        ("/api/v2/items/1", "/api/v2"),
        ("/api/v2x", "/api"),
        ("/static", "/static"),
        ("/static/a.css", "/static"),
        ("/staticky", "default"),
        ("/caf\u00e9/menu", "/caf\u00e9"),
        ("/x/y/z", "/x/y/z"),
        ("/x/y/z/1", "/x/y/z"),
        ("/x/y/zz", "/x"),
        ("/x/y", "/x"),
        ("/xy", "default"),
        ("/", "default"),
        ("", "default"),
    ],
)
async def test_longest_prefix_wins_at_segment_boundaries(path: str, expected: str) -> None:
    apps = {m: make_asgi(m) for m in MOUNTS}
    default = make_asgi("default")
    d = Dispatcher(apps, default=default)
    found = d.match(path)
    assert found is not None
    prefix, app = found
    by_prefix = {m.rstrip("/"): a for m, a in apps.items()}
    assert app is (default if expected == "default" else by_prefix[expected])
    assert prefix == ("" if expected == "default" else expected)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("path", ["/api/v2/a", "/api/b", "/static", "/x/y/z/q", "/nope", ""])
async def test_matching_is_the_same_at_every_depth_and_on_the_wsgi_side(path: str) -> None:
    apps = {m: make_wsgi(m) for m in MOUNTS}
    d = Dispatcher(apps, default=make_wsgi("default"))
    # the reference: the longest mount that is the path or a segment-prefix of it
    best = max(
        (
            m.rstrip("/")
            for m in MOUNTS
            if path == m.rstrip("/") or path.startswith(m.rstrip("/") + "/")
        ),
        key=len,
        default="",
    )
    found = d.match(path)
    assert found is not None and found[0] == best
    app = d.as_wsgi()
    try:
        _, body = wsgi_get(app, path)
    finally:
        app.close()
    assert body.split()[0] == (
        next(m for m in MOUNTS if m.rstrip("/") == best) if best else "default"
    )


async def test_no_default_answers_404_and_closes_websockets(anyio_backend: Any) -> None:
    d = Dispatcher({"/api": make_asgi("api")})
    sent = await call(d, http_scope("/other"))
    assert sent[0]["status"] == 404
    ws = http_scope("/other") | {"type": "websocket"}
    sent = await call(d, ws, [{"type": "websocket.connect"}])
    assert sent == [{"type": "websocket.close", "code": 1000}]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(
    ("mounts", "error"),
    [
        pytest.param({"api": None}, ValueError, id="no-leading-slash"),
        pytest.param({"/a?b": None}, ValueError, id="query"),
        pytest.param({"/a": None, "/a/": None}, ValueError, id="same-path-twice"),
        pytest.param({1: None}, TypeError, id="not-a-str"),
        pytest.param({"/": None, "default": None}, ValueError, id="root-mount-and-default"),
    ],
)
async def test_bad_mounts_are_refused(mounts: dict[Any, Any], error: type[Exception]) -> None:
    default = make_asgi("d") if "default" in mounts else None
    with pytest.raises(error):
        Dispatcher({k: make_asgi("x") for k in mounts if k != "default"}, default=default)


# ------------------------------------------------------------------ paths (C1)


async def test_c1_asgi_child_gets_root_path_plus_prefix_and_the_full_path(
    anyio_backend: Any,
) -> None:
    seen: list[Any] = []
    d = Dispatcher({"/api/v2": make_asgi("api", seen)})
    await call(d, http_scope("/api/v2/items"))
    await call(d, http_scope("/app/api/v2/items", root_path="/app"))
    await call(d, http_scope("/api/v2/items", root_path="/app"))  # server sent a relative path
    assert [(s["root_path"], s["path"]) for s in seen] == [
        ("/api/v2", "/api/v2/items"),
        ("/app/api/v2", "/app/api/v2/items"),
        ("/app/api/v2", "/app/api/v2/items"),
    ]
    assert seen[1]["raw_path"] == b"/app/api/v2/items"  # untouched


async def test_c1_wsgi_child_sees_script_name_and_path_info(anyio_backend: Any) -> None:
    seen: list[Any] = []
    d = Dispatcher({"/legacy": make_wsgi("legacy", seen)}, default=make_wsgi("root", seen))
    sent = await call(d, http_scope("/app/legacy/x/y", root_path="/app"))
    assert body_of(sent) == "legacy /app/legacy /x/y"
    sent = await call(d, http_scope("/app/other", root_path="/app"))
    assert body_of(sent) == "root /app /other"
    # C2 through the dispatcher: PATH_INFO holds the raw bytes as latin-1
    sent = await call(d, http_scope("/legacy/caf\u00e9", raw_path=b"/legacy/caf%C3%A9"))
    assert body_of(sent) == "legacy /legacy /caf\u00c3\u00a9"


async def test_wsgi_options_reach_the_wrapper(anyio_backend: Any) -> None:
    d = Dispatcher({"/w": make_wsgi("w")}, wsgi_options={"executor": "greenlet"})
    wrapper = d.children[0].app
    assert isinstance(wrapper, WsgiToAsgi) and wrapper.executor == "greenlet"
    sent = await call(d, http_scope("/w/z"))
    assert body_of(sent) == "w /w /z"


async def test_interface_override(anyio_backend: Any) -> None:
    def odd(*args: Any) -> Iterable[bytes]:  # undetectable: *args
        _environ, start_response = args
        start_response("200 OK", [])
        return [b"odd"]

    with pytest.raises(TypeError, match="interface="):
        Dispatcher({"/odd": odd})
    d = Dispatcher({"/odd": odd}, interfaces={"/odd": "wsgi"})
    assert body_of(await call(d, http_scope("/odd"))) == "odd"
    with pytest.raises(ValueError, match="not mounted"):
        Dispatcher({"/odd": odd}, interfaces={"/odd": "wsgi", "/x": "wsgi"})


# ------------------------------------------------------------------ websocket


async def test_c17_websocket_goes_to_asgi_child_and_wsgi_child_refuses(
    anyio_backend: Any,
) -> None:
    d = Dispatcher({"/ws": make_asgi("ws")}, default=make_wsgi("legacy"))
    ws = http_scope("/ws/chat") | {"type": "websocket"}
    sent = await call(d, ws, [{"type": "websocket.connect"}])
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == "ws"
    ws = http_scope("/legacy") | {"type": "websocket"}
    sent = await call(d, ws, [{"type": "websocket.connect"}])
    assert [m["type"] for m in sent] == ["websocket.close"]


# ------------------------------------------------------------------ lifespan


class LifespanApp:
    """An ASGI app with a lifespan that logs what happens into a shared list."""

    def __init__(self, name: str, log: list[str], fail: str = "") -> None:
        self.name, self.log, self.fail = name, log, fail

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        message = await receive()
        assert message["type"] == "lifespan.startup"
        if self.fail == "startup":
            await send({"type": "lifespan.startup.failed", "message": f"{self.name} broke"})
            return
        if self.fail == "raise":
            raise RuntimeError(f"{self.name} exploded")
        scope["state"][self.name] = True
        self.log.append(f"start {self.name}")
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        self.log.append(f"stop {self.name}")
        if self.fail == "shutdown":
            await send({"type": "lifespan.shutdown.failed", "message": f"{self.name} stuck"})
            return
        await send({"type": "lifespan.shutdown.complete"})


async def run_lifespan(app: Any) -> tuple[list[Message], dict[str, Any]]:
    import anyio

    state: dict[str, Any] = {}
    to_app, app_in = anyio.create_memory_object_stream[Message](4)
    sent: list[Message] = []
    await to_app.send({"type": "lifespan.startup"})

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "lifespan.startup.complete":
            await to_app.send({"type": "lifespan.shutdown"})

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    with to_app, app_in, anyio.fail_after(10):
        await app(scope, app_in.receive, send)
    return sent, state


async def test_lifespan_fans_out_in_order_and_back_in_reverse(anyio_backend: Any) -> None:
    log: list[str] = []
    d = Dispatcher(
        {"/a": LifespanApp("a", log), "/plain": make_asgi("plain"), "/b": LifespanApp("b", log)},
        default=LifespanApp("default", log),
    )
    sent, state = await run_lifespan(d)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert log == ["start a", "start b", "start default", "stop default", "stop b", "stop a"]
    assert state == {"a": True, "b": True, "default": True}  # one shared state dict


@pytest.mark.parametrize("how", ["startup", "raise"])
async def test_a1_failed_child_startup_fails_the_app_and_undoes_the_rest(
    anyio_backend: Any, how: str
) -> None:
    log: list[str] = []
    d = Dispatcher(
        {"/a": LifespanApp("a", log), "/b": LifespanApp("b", log, fail=how)},
        default=LifespanApp("default", log),
    )
    sent, _ = await run_lifespan(d)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "'/b'" in sent[0]["message"]
    assert log == ["start a", "stop a"]  # default never started; a shut down


async def test_lifespan_shutdown_failures_are_reported_after_all_children_stop(
    anyio_backend: Any,
) -> None:
    log: list[str] = []
    d = Dispatcher({"/a": LifespanApp("a", log), "/b": LifespanApp("b", log, fail="shutdown")})
    sent, _ = await run_lifespan(d)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert "b stuck" in sent[1]["message"]
    assert log == ["start a", "start b", "stop b", "stop a"]


async def test_c17_wsgi_children_take_part_in_lifespan(anyio_backend: Any) -> None:
    log: list[str] = []
    wsgi_app = make_wsgi("w")
    d = Dispatcher(
        {"/w": wsgi_app},
        wsgi_options={
            "on_startup": lambda: log.append("start w"),
            "on_shutdown": lambda: log.append("stop w"),
        },
    )
    sent, _ = await run_lifespan(d)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert log == ["start w", "stop w"]


# ------------------------------------------------------------------ the WSGI face


def wsgi_get(app: Any, path: str, script_name: str = "") -> tuple[str, str]:
    environ: dict[str, Any] = {"PATH_INFO": path, "SCRIPT_NAME": script_name}
    setup_testing_defaults(environ)
    environ["PATH_INFO"], environ["SCRIPT_NAME"] = path, script_name
    result = wsgi_call(app, environ, validate=False)
    return result.statuses[0], result.body.decode("latin-1")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_as_wsgi_calls_wsgi_children_directly_and_asgi_children_on_one_loop() -> None:
    seen: list[Any] = []
    log: list[str] = []
    api = LifespanApp("api", log)
    asgi_seen: list[Any] = []
    api_http = make_asgi("api", asgi_seen)

    async def api_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await api(scope, receive, send)
        else:
            await api_http(scope, receive, send)

    d = Dispatcher({"/api/v2": api_app, "/legacy": make_wsgi("legacy", seen)})
    app = d.as_wsgi(lifespan="on")
    assert isinstance(app, WsgiDispatcher)
    try:
        # The first request is a WSGI one, yet the ASGI child's startup has run (A1).
        assert wsgi_get(app, "/legacy/x", "/app") == ("200 OK", "legacy /app/legacy /x")
        assert log == ["start api"]
        environ, ident = seen[0]
        assert ident == threading.get_ident()  # called right here: no loop, no hand-off
        assert "asgi.scope" not in environ
        assert wsgi_get(app, "/api/v2/items", "/app") == (
            "200 OK",
            "api /app/api/v2 /app/api/v2/items",
        )
        assert wsgi_get(app, "/nothing")[0].startswith("404")
    finally:
        app.close()
    assert log == ["start api", "stop api"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_as_wsgi_failed_startup_answers_500_for_wsgi_children_too() -> None:
    log: list[str] = []
    d = Dispatcher({"/api": LifespanApp("api", log, fail="startup"), "/w": make_wsgi("w")})
    app = d.as_wsgi()
    try:
        status, _ = wsgi_get(app, "/w/x")
        assert status.startswith("500")
        status, _ = wsgi_get(app, "/api/x")
        assert status.startswith("500")
    finally:
        app.close()
