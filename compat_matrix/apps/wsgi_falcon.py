"""The scenario app in Falcon (WSGI).

Falcon has no session machinery and no URL generation: the session
scenario does not apply, and URLs are built from ``req.root_path``.
"""

from __future__ import annotations

from typing import Any

import falcon

from .common import STARTED, STREAMS, digest, forever, sse


class Echo:
    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        resp.media = {"name": name, "q": req.get_param("q")}


class Form:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = req.get_media()
        resp.media = {"a": data["a"], "b": data["b"]}


class Json:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = req.get_media()
        resp.media = {"n": data["n"] + 1, "s": data["s"]}


class Upload:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = digest(req.bounded_stream.read)


class Events:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/event-stream"
        resp.stream = sse(int(req.get_param("n") or "5"))


class Forever:
    def on_get(self, req: falcon.Request, resp: falcon.Response, sid: str) -> None:
        resp.content_type = "text/event-stream"
        resp.stream = forever(sid)


class Status:
    def on_get(self, req: falcon.Request, resp: falcon.Response, sid: str) -> None:
        resp.media = {"state": STREAMS.get(sid)}


class CookiesSet:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_cookie("a", "1", secure=False, path="/")
        resp.set_cookie("b", "2", secure=False, path="/")
        resp.media = {"ok": True}


class CookiesRead:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"a": req.cookies.get("a"), "b": req.cookies.get("b")}


class Redirect:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPFound(req.root_path + "/echo/target")


class Teapot:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = 418
        resp.set_header("X-Compat", "yes")
        resp.content_type = "text/plain"
        resp.text = "short and stout"


class Error:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise RuntimeError("compat matrix: a deliberate application error")


class Where:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"root": req.root_path, "url": req.root_path + "/where"}


class Lifespan:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"started": STARTED.get("value")}


app: Any = falcon.App()
for _route, _resource in [
    ("/echo/{name}", Echo()),
    ("/form", Form()),
    ("/json", Json()),
    ("/upload", Upload()),
    ("/sse", Events()),
    ("/stream-forever/{sid}", Forever()),
    ("/stream-status/{sid}", Status()),
    ("/cookies/set", CookiesSet()),
    ("/cookies/read", CookiesRead()),
    ("/redirect", Redirect()),
    ("/teapot", Teapot()),
    ("/error", Error()),
    ("/where", Where()),
    ("/lifespan", Lifespan()),
]:
    app.add_route(_route, _resource)
