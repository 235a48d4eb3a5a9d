"""In-process drivers: play the server for one request and collect what the app answers.

ASGI side: ``asgi_call(app, scope, body)`` hands the app ``body`` as ``http.request``
messages (or any ``inbox`` of messages), collects every message it sends into an
``AsgiResult`` and counts its ``receive()`` calls. What ``receive()`` does once the inbox
is empty is the one thing servers differ in, so it is a parameter, ``then``:

* ``"answered"`` (default): waits until the response is complete (a body message without
  ``more_body``, or ``http.response.pathsend``), then ``http.disconnect``: a client that
  stays until it has its answer;
* ``"disconnect"``: ``http.disconnect`` at once;
* ``"never"``: waits forever (the ``timeout`` bounds the request);
* a number: sleeps that many seconds, then ``http.disconnect``.

The whole call is bounded by ``timeout`` seconds (``anyio.fail_after``; ``None``: no
bound). It runs on whatever loop awaits it (asyncio or trio); ``asgi_request(backend, ...)``
runs it in a fresh ``anyio.run``.

WSGI side: ``wsgi_call(app, environ)`` calls a WSGI app as a server does (under
``wsgiref.validate`` unless ``validate=False``), joins the body, always calls ``close()``,
and returns a ``WsgiResult`` (status, headers, body; ``statuses`` lists every status
passed to ``start_response``; ``write()`` output is dropped).

Nothing here imports asgibridge, so benchmarks can use it against any tree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from wsgiref.validate import validator

import anyio

from .scopes import make_environ, make_scope

__all__ = ["AsgiResult", "WsgiResult", "asgi_call", "asgi_request", "wsgi_call"]

Message = dict[str, Any]


def _is_final(message: Message) -> bool:
    return message["type"] == "http.response.pathsend" or (
        message["type"] == "http.response.body" and not message.get("more_body", False)
    )


class AsgiResult:
    """What an ASGI app sent for one request, and how often it called ``receive()``."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.receives = 0

    @property
    def status(self) -> int:
        assert self.messages, "no response was sent"
        assert self.messages[0]["type"] == "http.response.start", self.messages
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.messages[0]["headers"])

    def header(self, name: bytes) -> bytes | None:
        values = [v for k, v in self.headers if k == name]
        return values[0] if values else None

    @property
    def bodies(self) -> list[Message]:
        return [m for m in self.messages if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.bodies)

    @property
    def complete(self) -> bool:
        last = self.messages[-1] if self.messages else {}
        return last.get("type") == "http.response.pathsend" or (
            last.get("type") == "http.response.body" and not last.get("more_body", False)
        )


async def asgi_call(
    app: Any,
    scope: dict[str, Any] | None = None,
    body: Iterable[bytes] = (b"",),
    *,
    inbox: Iterable[Message] | None = None,
    then: str | float = "answered",
    on_send: Callable[[Message], Awaitable[None]] | None = None,
    timeout: float | None = 10.0,
) -> AsgiResult:
    """One request: ``body`` chunks (or the ``inbox`` messages) from receive(), then ``then``.

    ``scope`` defaults to ``make_scope()``; ``on_send`` is awaited after each message is
    recorded. See the module docstring for ``then`` and ``timeout``.
    """
    if inbox is not None:
        messages = list(inbox)
    else:
        chunks = list(body)
        messages = [
            {"type": "http.request", "body": data, "more_body": i < len(chunks) - 1}
            for i, data in enumerate(chunks)
        ]
    result = AsgiResult([])
    answered = anyio.Event()

    async def receive() -> Message:
        result.receives += 1
        if messages:
            return messages.pop(0)
        if then == "answered":
            await answered.wait()
        elif then == "never":
            await anyio.sleep_forever()
            raise AssertionError("unreachable: sleep_forever returned")
        elif then != "disconnect":
            await anyio.sleep(float(then))
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        result.messages.append(message)
        if on_send is not None:
            await on_send(message)
        if _is_final(message):
            answered.set()

    if timeout is None:
        await app(scope or make_scope(), receive, send)
    else:
        with anyio.fail_after(timeout):
            await app(scope or make_scope(), receive, send)
    return result


def asgi_request(backend: str, app: Any, *args: Any, **kwargs: Any) -> AsgiResult:
    """``asgi_call(app, *args, **kwargs)`` in a fresh ``anyio.run`` on ``backend``."""

    async def main() -> AsgiResult:
        return await asgi_call(app, *args, **kwargs)

    return anyio.run(main, backend=backend)


class WsgiResult:
    """What a WSGI app answered: the last status, its headers and the joined body."""

    def __init__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        body: bytes,
        statuses: list[str] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.statuses = [status] if statuses is None else statuses

    @property
    def code(self) -> int:
        return int(self.status.split()[0])

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


def wsgi_call(
    app: Any, environ: dict[str, Any] | None = None, *, validate: bool = True
) -> WsgiResult:
    """Call a WSGI app like a server does (under wsgiref.validate by default).

    ``environ`` defaults to ``make_environ()``.
    """
    environ = make_environ() if environ is None else environ
    got: dict[str, Any] = {}
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got["status"], got["headers"] = status, headers
        statuses.append(status)
        return lambda data: None

    wsgi = validator(app) if validate else app
    iterable = wsgi(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return WsgiResult(got["status"], got["headers"], body, statuses)
