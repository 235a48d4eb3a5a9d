"""Thread mode's lock-free steps: the final push and the request task's last send (C8, C11, C14)."""

from __future__ import annotations

import contextvars
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
            True, False, None,  # type: ignore[arg-type]
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


def test_queued_requests_run_after_the_running_one_and_free_every_slot() -> None:
    """One slot, eight requests at once: all answered, the slot count back to zero after.

    The pool's worker counts each request's end and takes the next queued one
    (its ``after_job`` hook); a job that is not a request (a call on the same
    pool, as lifespan hooks are) leaves the count alone.
    """
    import threading

    from asgibridge._core import Job, run_job_async

    threads: list[int] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        threads.append(threading.get_ident())
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    bridge = WsgiToAsgi(app, active_workers=1, max_workers=4)

    async def main() -> None:
        with anyio.fail_after(10):
            results: list[Any] = []

            async def one() -> None:
                results.append(await call(bridge, make_scope()))

            async with anyio.create_task_group() as tg:
                for _ in range(8):
                    tg.start_soon(one)
            assert [r.body for r in results] == [b"ok"] * 8
            adm = bridge._admission()
            # The worker counts a request's end just after posting its outcome.
            while adm.done < 8:
                await anyio.sleep(0.001)
            assert (adm.active, len(adm.queue), adm.done) == (0, 0, 8)
            # A job that is not a request, on the same pool: the count stays.
            assert (
                await run_job_async(Job(lambda: 7, (), {}, contextvars.copy_context()), bridge.pool)
                == 7
            )
            assert (adm.active, len(adm.queue), adm.done) == (0, 0, 8)
            assert (await call(bridge, make_scope())).body == b"ok"
            while adm.done < 9:
                await anyio.sleep(0.001)
            assert (adm.active, adm.done) == (0, 9)

    try:
        anyio.run(main)
    finally:
        bridge.close()
    assert len(threads) == 9


def test_c10_a_body_prefetched_whole_reads_back_exactly_in_small_reads() -> None:
    """Five chunks, all in before the app runs (read without the lock): every byte, in order."""
    chunks = [bytes([65 + i]) * 10 for i in range(5)]

    def app(environ: Any, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        parts = []
        while True:
            part = stream.read(3)
            if not part:
                break
            parts.append(part)
        start_response("200 OK", [])
        return [b"".join(parts), b"|", stream.read()]

    bridge = WsgiToAsgi(app)
    scope = make_scope(method="POST", headers=[(b"content-length", b"50")])

    async def main() -> None:
        with anyio.fail_after(10):
            result = await call(bridge, scope, chunks)
            assert result.body == b"".join(chunks) + b"|"

    try:
        anyio.run(main)
    finally:
        bridge.close()


def test_c14_body_data_sent_for_a_get_while_it_streams_is_ignored_not_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that sends body data for a body-less GET while its response streams.

    The bridge has no body buffer for such a request (its ``wsgi.input`` is
    empty from the start), so the receiver must not store the data: it warns
    once and stops watching, and the response streams to its end.
    """

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        assert environ["wsgi.input"].read() == b""
        for chunk in (b"ab", b"cd", b"ef"):
            yield chunk
            time.sleep(0.005)  # the receiver runs while the app streams

    bridge = WsgiToAsgi(app)
    confused = {"type": "http.request", "body": b"junk", "more_body": True}

    async def main() -> None:
        result = await call(bridge, make_scope(), inbox=[confused], then="never")
        assert b"".join(m.get("body", b"") for m in result.bodies) == b"abcdef"
        assert result.bodies[-1].get("more_body", False) is False
        assert result.receives == 1

    try:
        with caplog.at_level("WARNING", logger="asgibridge.wsgi"):
            anyio.run(main)
    finally:
        bridge.close()
    assert any("after the request body ended" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(b"11", b"ab\ncd\nef\ngh"), (b"5", b"ab\ncd"), (None, b"ab\ncd\nef\ngh\n")],
    ids=["exact", "clamped", "no-length"],
)
def test_c10_a_body_in_one_message_reads_back_clamped_to_its_length(
    length: bytes | None, expected: bytes
) -> None:
    """A body that comes whole in one message (handed to ``wsgi.input`` directly).

    Lines, sized reads and the rest, never past ``CONTENT_LENGTH``, and the
    server's message is the only ``receive()`` the request makes.
    """
    sent = b"ab\ncd\nef\ngh\n"  # longer than both declared lengths

    def app(environ: Any, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        parts = [stream.readline(), stream.read(2), stream.read(1)]
        parts += list(stream)
        parts.append(stream.read())
        start_response("200 OK", [])
        return [b"|".join(parts)]

    bridge = WsgiToAsgi(app)
    headers = [] if length is None else [(b"content-length", length)]
    scope = make_scope(method="POST", headers=headers)

    async def main() -> None:
        with anyio.fail_after(10):
            result = await call(bridge, scope, [sent])
            got = result.body.split(b"|")
            assert b"".join(got) == expected, got
            assert got[:3] == [b"ab\n", expected[3:5], expected[5:6]]
            assert result.receives == 1

    try:
        anyio.run(main)
    finally:
        bridge.close()
