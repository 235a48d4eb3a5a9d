"""Shared fixtures: every async test runs on asyncio, on asyncio with uvloop, and on trio.

uvloop is what ``uvicorn[standard]`` runs in production, and it differs from
the stdlib loop in ways the bridges care about (``call_soon_threadsafe``, the
running-loop lookup, attributes cached on the loop), so it gets its own run.

Tests that run the loop themselves (``anyio.run(..., backend=backend)``) take the
``backend`` fixture (asyncio and trio), and tests of ``WsgiToAsgi`` take the
``executor`` fixture (thread and greenlet). Shared helpers live in ``tests/support``.
"""

from __future__ import annotations

from typing import Any

import pytest

_BACKENDS: list[Any] = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param("trio", id="trio"),
]


@pytest.fixture(params=_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture(params=["thread", "greenlet"])
def executor(request: pytest.FixtureRequest) -> str:
    """Each ``WsgiToAsgi`` executor."""
    return str(request.param)


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each event loop library, for tests that call ``anyio.run`` themselves."""
    return str(request.param)
