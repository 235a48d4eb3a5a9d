"""Two custom middleware: a sync ``MiddlewareMixin`` and an async-capable one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from django.utils.decorators import sync_and_async_middleware
from django.utils.deprecation import MiddlewareMixin


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class ThreadStampMiddleware(MiddlewareMixin):
    """Sync hooks: record the thread ``process_request`` ran on; report both in headers."""

    def process_request(self, request: Any) -> None:
        request.stamp_thread = threading.get_ident()
        request.stamp_loop = _loop_running()

    def process_response(self, request: Any, response: Any) -> Any:
        same = getattr(request, "stamp_thread", None) == threading.get_ident()
        response["X-Sync-Middleware"] = "same-thread" if same else "other-thread"
        response["X-Sync-Middleware-Loop"] = str(getattr(request, "stamp_loop", None))
        return response


@sync_and_async_middleware
def ServedByMiddleware(get_response: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Async-capable: says which mode Django ran it in (``async`` on ASGI, ``sync`` on WSGI)."""
    if asyncio.iscoroutinefunction(get_response):

        async def middleware(request: Any) -> Any:
            response = await get_response(request)
            response["X-Served-By"] = "async" if _loop_running() else "async-without-loop"
            return response

    else:

        def middleware(request: Any) -> Any:
            response = get_response(request)
            response["X-Served-By"] = "sync"
            return response

    return middleware
