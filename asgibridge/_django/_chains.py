"""The middleware chains of ``asgibridge.django.ASGIHandler``'s fast path.

Theory of operation
-------------------
Django's ``ASGIHandler`` builds one middleware chain in which each sync step
is a thread-sensitive ``sync_to_async`` hand-off. For a request whose view is
sync, ``ASGIHandler`` instead runs the innermost middleware that have only
sync code, and the view, inline on the request's thread inside one hand-off,
as ``WSGIHandler`` does. :class:`Chains` builds the two chains that need,
once per handler, by walking ``settings.MIDDLEWARE`` from the inside out and
making the same decisions Django's ``load_middleware(is_async=True)`` would
(capabilities, modes, ``MiddlewareNotUsed``, the hooks it registers):

* **inner**: from the view out to the first middleware with async code of
  its own (:func:`runs_on_request_thread` says which), all in sync mode;
* **outer**: the rest, in the mode Django gives them under ASGI, with one
  hand-off into ``inner``; ``None`` when every middleware runs on the
  request's thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.deprecation import MiddlewareMixin
from django.utils.module_loading import import_string

from .. import sync as _bridge

if TYPE_CHECKING:
    from ..django import ASGIHandler

__all__ = ["Chains", "runs_on_request_thread"]


def runs_on_request_thread(factory: Any, mode_is_async: bool) -> bool:
    """Whether ``factory``'s middleware, in the mode Django gives it, only runs sync code.

    Such middleware runs every hook on the request's thread under Django's own
    ``ASGIHandler`` too (each through a thread-sensitive ``sync_to_async``), so
    running it inline on that thread inside one hand-off changes nothing it can see.
    True for middleware Django runs in sync mode, and for ``MiddlewareMixin``
    subclasses that keep its ``__call__``/``__acall__`` and define no async hooks.
    """
    if not mode_is_async:
        return True
    if not (isinstance(factory, type) and issubclass(factory, MiddlewareMixin)):
        return False
    if factory.__call__ is not MiddlewareMixin.__call__:
        return False
    if getattr(factory, "__acall__", None) is not MiddlewareMixin.__acall__:
        return False
    hooks = (
        "process_request",
        "process_response",
        "process_view",
        "process_exception",
        "process_template_response",
    )
    return not any(_bridge.iscoroutinefunction(getattr(factory, h, None)) for h in hooks)


class Chains:
    """The middleware chains the fast path uses, built once per handler.

    ``inner`` is a sync callable: the innermost middleware that run on the request's
    thread, down to Django's sync ``BaseHandler._get_response`` (held by ``core``, whose
    view, template-response and exception middleware lists are in sync mode).
    ``outer`` is an async ``BaseHandler`` whose chain runs the remaining, outermost
    middleware in the mode Django gives them under ASGI, with one hand-off into
    ``inner``; it is ``None`` when every middleware runs on the request's thread.
    """

    def __init__(self, handler: ASGIHandler) -> None:
        core = BaseHandler()
        core._view_middleware = []
        core._template_response_middleware = []
        core._exception_middleware = []
        self.core = core
        self.outer: BaseHandler | None = None

        handler_fn: Any = convert_exception_to_response(core._get_response)
        handler_is_async = False
        # What Django's load_middleware(is_async=True) would decide, layer by layer.
        stock_is_async = True
        in_suffix = True
        for path in reversed(settings.MIDDLEWARE):
            factory = import_string(path)
            stock_mode_async = _stock_mode(path, factory, stock_is_async)
            if in_suffix and not runs_on_request_thread(factory, stock_mode_async):
                # First middleware (from the inside) that has async code of its own:
                # everything inside it becomes one thread-sensitive hand-off.
                in_suffix = False
                self.inner = handler_fn
                handler_fn = _bridge.sync_to_async(handler_fn, thread_sensitive=True)
                handler_is_async = True
            mode_async = False if in_suffix else stock_mode_async
            try:
                adapted = handler.adapt_method_mode(
                    mode_async,
                    handler_fn,
                    handler_is_async,
                    debug=settings.DEBUG,
                    name=f"middleware {path}",
                )
                instance = factory(adapted)
            except MiddlewareNotUsed:
                continue
            if instance is None:
                raise ImproperlyConfigured(f"Middleware factory {path} returned None.")
            _add_hooks(core, handler, instance)
            handler_fn = convert_exception_to_response(instance)
            handler_is_async = mode_async
            stock_is_async = stock_mode_async
        if in_suffix:
            self.inner = handler_fn
        else:
            outer = BaseHandler()
            outer._middleware_chain = handler.adapt_method_mode(True, handler_fn, handler_is_async)
            self.outer = outer
        core._middleware_chain = self.inner


def _stock_mode(path: str, factory: Any, stock_is_async: bool) -> bool:
    """The mode Django's ``load_middleware(is_async=True)`` gives ``factory``, as it checks it."""
    can_sync = getattr(factory, "sync_capable", True)
    can_async = getattr(factory, "async_capable", False)
    if not can_sync and not can_async:
        raise RuntimeError(
            f"Middleware {path} must have at least one of sync_capable/async_capable set to True."
        )
    return bool(can_async) if (stock_is_async or not can_sync) else False


def _add_hooks(core: BaseHandler, handler: ASGIHandler, instance: Any) -> None:
    """Register ``instance``'s hooks with ``core``, in sync mode, as Django's loader does.

    ``core._get_response`` calls them, on the request's thread.
    """
    if hasattr(instance, "process_view"):
        core._view_middleware.insert(0, handler.adapt_method_mode(False, instance.process_view))
    if hasattr(instance, "process_template_response"):
        core._template_response_middleware.append(
            handler.adapt_method_mode(False, instance.process_template_response)
        )
    if hasattr(instance, "process_exception"):
        core._exception_middleware.append(
            handler.adapt_method_mode(False, instance.process_exception)
        )
