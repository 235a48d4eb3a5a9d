"""Shared fixtures: every async test runs on asyncio, on asyncio with uvloop, and on trio.

uvloop is what ``uvicorn[standard]`` runs in production, and it differs from
the stdlib loop in ways the bridges care about (``call_soon_threadsafe``, the
running-loop lookup, attributes cached on the loop), so it gets its own run.
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
