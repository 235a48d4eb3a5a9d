"""The client side of every scenario: what is sent, and what counts as a pass.

Each scenario is a function ``check(ctx)`` that returns nothing when the
cell passes it and raises :class:`Fail` (or any exception) when it does not.
Every request has a timeout, and every loop a bound in count and time.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["SCENARIOS", "Context", "Fail", "run_scenario"]

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
UPLOAD = hashlib.sha256(b"compat").digest() * (5 * 1024 * 1024 // 32)  # 5 MiB
CHUNK = 64 * 1024
CHUNKS = 32  # the chunked upload: 2 MiB in 64 KiB chunks, no Content-Length
CLOSE_WITHIN = 5.0  # seconds for the app's stream to be closed after the client leaves


class Fail(AssertionError):
    """A scenario's answer was not what the framework promised."""


@dataclass
class Context:
    base: str
    http2: bool
    framework: str
    keepalive: bool = True

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base,
            headers=None if self.keepalive else {"Connection": "close"},
            timeout=TIMEOUT,
            http1=not self.http2,
            http2=self.http2,
            follow_redirects=False,
        )


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise Fail(what)


def _json(r: httpx.Response) -> Any:
    expect(r.status_code == 200, f"status {r.status_code}, body {r.text[:200]!r}")
    try:
        return r.json()
    except json.JSONDecodeError:
        raise Fail(f"not JSON: {r.text[:200]!r}") from None


def get(ctx: Context) -> None:
    with ctx.client() as c:
        r = c.get("/echo/caf%C3%A9%20%E2%82%AC?q=%C3%BCber&x=1")
        data = _json(r)
        expect(data == {"name": "café €", "q": "über"}, f"got {data!r}")


def form(ctx: Context) -> None:
    with ctx.client() as c:
        r = c.post(
            "/form",
            content=b"a=1&b=%C3%BC",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        data = _json(r)
        expect(data == {"a": "1", "b": "ü"}, f"got {data!r}")


def json_post(ctx: Context) -> None:
    with ctx.client() as c:
        data = _json(c.post("/json", json={"n": 41, "s": "ü"}))
        expect(data == {"n": 42, "s": "ü"}, f"got {data!r}")


def upload_5mb(ctx: Context) -> None:
    with ctx.client() as c:
        data = _json(c.post("/upload", content=UPLOAD))
        want = {"size": len(UPLOAD), "sha256": hashlib.sha256(UPLOAD).hexdigest()}
        expect(data == want, f"got {data!r}, want size {len(UPLOAD)}")


def upload_chunked(ctx: Context) -> None:
    body = UPLOAD[: CHUNK * CHUNKS]

    def chunks() -> Iterator[bytes]:
        for i in range(CHUNKS):
            yield body[i * CHUNK : (i + 1) * CHUNK]

    with ctx.client() as c:
        r = c.post(
            "/upload", content=chunks(), headers={"Content-Type": "application/octet-stream"}
        )
        data = _json(r)
        want = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        expect(data == want, f"got {data!r}, want size {len(body)}")


def _events(lines: Iterator[str], count: int, deadline: float) -> list[str]:
    got: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            got.append(line[5:].strip())
            if len(got) >= count:
                break
        if time.monotonic() > deadline:
            break
    return got


def sse(ctx: Context) -> None:
    with ctx.client() as c, c.stream("GET", "/sse?n=5") as r:
        expect(r.status_code == 200, f"status {r.status_code}")
        ctype = r.headers.get("content-type", "")
        expect(ctype.startswith("text/event-stream"), f"content-type {ctype!r}")
        got = _events(r.iter_lines(), 5, time.monotonic() + 10)
        expect(got == ["0", "1", "2", "3", "4"], f"events {got!r}")


def _cookie_round_trip(ctx: Context) -> tuple[httpx.Response, Any]:
    with ctx.client() as c:
        r = c.get("/cookies/set")
        expect(r.status_code == 200, f"set: status {r.status_code}, body {r.text[:200]!r}")
        return r, _json(c.get("/cookies/read"))


def cookies(ctx: Context) -> None:
    r, data = _cookie_round_trip(ctx)
    set_cookies = r.headers.get_list("set-cookie")
    names = {v.split("=", 1)[0].strip() for v in set_cookies}
    expect({"a", "b"} <= names, f"Set-Cookie names {sorted(names)}")
    expect(data.get("a") == "1" and data.get("b") == "2", f"read back {data!r}")


def session(ctx: Context) -> None:
    _, data = _cookie_round_trip(ctx)
    expect(data.get("user") == "alice", f"session read back {data!r}")


def redirect(ctx: Context) -> None:
    with ctx.client() as c:
        r = c.get("/redirect")
        expect(r.status_code in (301, 302, 303, 307, 308), f"status {r.status_code}")
        location = r.headers.get("location", "")
        expect(urlsplit(location).path == "/echo/target", f"Location {location!r}")
        data = _json(c.get(httpx.URL(ctx.base).join(location)))
        expect(data.get("name") == "target", f"after redirect {data!r}")


def status_headers(ctx: Context) -> None:
    with ctx.client() as c:
        r = c.get("/teapot")
        expect(r.status_code == 418, f"status {r.status_code}")
        expect(r.headers.get("x-compat") == "yes", f"X-Compat {r.headers.get('x-compat')!r}")
        expect(r.text == "short and stout", f"body {r.text[:100]!r}")


def prefix(ctx: Context) -> None:
    with ctx.client() as c:
        data = _json(c.get("/mnt/where"))
        expect(data.get("root") == "/mnt", f"root {data.get('root')!r}")
        url = str(data.get("url"))
        expect(urlsplit(url).path == "/mnt/where", f"url_for gave {url!r}")
        echo = _json(c.get("/mnt/echo/x%C3%BF"))
        expect(echo.get("name") == "xÿ", f"echo under the mount {echo!r}")


def error_500(ctx: Context) -> None:
    with ctx.client() as c:
        r = c.get("/error")
        expect(r.status_code == 500, f"status {r.status_code}")
    with ctx.client() as c:
        data = _json(c.get("/echo/after-error"))
        expect(data.get("name") == "after-error", f"next request {data!r}")


def lifespan(ctx: Context) -> None:
    with ctx.client() as c:
        data = _json(c.get("/lifespan"))
        expect(data.get("started") == "yes", f"lifespan state {data!r}")


def disconnect(ctx: Context) -> None:
    sid = uuid.uuid4().hex
    c = ctx.client()
    try:
        with c.stream("GET", f"/stream-forever/{sid}") as r:
            expect(r.status_code == 200, f"status {r.status_code}")
            got = _events(r.iter_lines(), 2, time.monotonic() + 10)
            expect(len(got) == 2, f"events before leaving {got!r}")
            c.close()  # leave mid-stream: the connection goes away
    finally:
        c.close()
    with ctx.client() as c2:
        data = _json(c2.get("/echo/after-disconnect"))
        expect(data.get("name") == "after-disconnect", f"next request {data!r}")
        state = None
        deadline = time.monotonic() + CLOSE_WITHIN
        for _ in range(100):
            state = _json(c2.get(f"/stream-status/{sid}")).get("state")
            if state != "open" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        expect(
            state == "closed",
            f"the app's stream is {state!r} {CLOSE_WITHIN:.0f} s after the client left",
        )


def orm(ctx: Context) -> None:
    with ctx.client() as c:
        data = _json(c.get("/orm"))
        expect(data == {"count": 1}, f"got {data!r}")


SCENARIOS: dict[str, Callable[[Context], None]] = {
    "get": get,
    "form": form,
    "json": json_post,
    "upload-5mb": upload_5mb,
    "upload-chunked": upload_chunked,
    "sse": sse,
    "cookies": cookies,
    "session": session,
    "redirect": redirect,
    "status+headers": status_headers,
    "prefix": prefix,
    "error-500": error_500,
    "lifespan": lifespan,
    "disconnect": disconnect,
    "orm": orm,
}


def run_scenario(name: str, ctx: Context) -> tuple[bool, str]:
    """Run one scenario; ``(passed, detail)``."""
    try:
        SCENARIOS[name](ctx)
    except Fail as exc:
        return False, str(exc)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"[:300]
    return True, ""
