"""Thread mode's lock-free steps: the final push and the request task's last send (C8, C11, C14)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

from asgibridge.errors import ClientDisconnected
from asgibridge.wsgi import WsgiToAsgi
from tests.support.drivers import asgi_call as call
from tests.support.scopes import make_scope


def test_c11_final_push_after_the_client_left_raises_with_the_reason() -> None:
    """A final push on a GONE exchange raises ClientDisconnected naming why, and queues nothing."""
    from asgibridge._core import batching_ref, current_loop_ref
    from asgibridge._wsgi import ThreadExchange

    settings = SimpleNamespace(
        app=None, send_window=4, send_window_bytes=1 << 16, body_window=1 << 16, body_timeout=None
    )

    async def nothing() -> Any:
        raise AssertionError("not called")

    async def main() -> None:
        ex = ThreadExchange(
            batching_ref(current_loop_ref()), nothing, nothing, {}, settings, {}, deque(), 0,
            True, False, None, lambda ex, adm: None,  # type: ignore[arg-type]
        )  # fmt: skip
        ex.abandon("the client left for lunch")
        with pytest.raises(ClientDisconnected, match="the client left for lunch"):
            ex.push([{"type": "http.response.body", "body": b"x"}], True, 1)
        assert ex.final is None and ex.pending == []

    anyio.run(main)


@pytest.mark.parametrize("pause", [0.0, 0.002])
def test_c8_final_message_follows_the_streamed_ones(pause: float) -> None:
    """Streamed chunks, then the chunk that completes Content-Length: sent in order, once."""

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "12")])
        for chunk in (b"abcd", b"efgh", b"ijkl"):
            yield chunk
            time.sleep(pause)

    bridge = WsgiToAsgi(app)

    async def main() -> None:
        with anyio.fail_after(10):
            for _ in range(20):
                result = await call(bridge, make_scope())
                assert [m["type"] for m in result.messages] == [
                    "http.response.start",
                    *["http.response.body"] * 3,
                ]
                assert [m.get("body") for m in result.bodies] == [b"abcd", b"efgh", b"ijkl"]
                assert [m.get("more_body", False) for m in result.bodies] == [True, True, False]

    try:
        anyio.run(main)
    finally:
        bridge.close()
