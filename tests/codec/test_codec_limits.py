"""Tests for the names _codec added in the layout work: HeaderLimits and the start memo.

Test names carry the conformance rule they cover (see docs/conformance.md).
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest

from asgibridge._codec import (
    DEFAULT_HEADER_LIMITS,
    EnvironBuilder,
    HeaderLimits,
    _start,
    build_environ,
    encode_response_start,
    encode_response_start_cached,
)
from asgibridge.errors import AppProtocolError, RequestRejected
from tests.support.scopes import uvicorn_scope as make_scope


def builder(**kwargs: Any) -> EnvironBuilder:
    return EnvironBuilder(errors=io.StringIO(), multithread=True, **kwargs)


def test_c21_defaults_are_defined_once_and_are_the_documented_ones() -> None:
    assert DEFAULT_HEADER_LIMITS == HeaderLimits(max_headers=100, max_header_repeats=32)
    assert builder().limits == DEFAULT_HEADER_LIMITS
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_HEADER_LIMITS.max_headers = 1  # type: ignore[misc]


def test_c21_builder_takes_a_header_limits_value() -> None:
    b = builder(limits=HeaderLimits(max_headers=2, max_header_repeats=1))
    assert (b.max_headers, b.max_header_repeats) == (2, 1)
    with pytest.raises(RequestRejected, match="max_headers=2"):
        b.build(make_scope(headers=[(b"x-a", b"1"), (b"x-b", b"2"), (b"x-c", b"3")]))
    with pytest.raises(RequestRejected, match="max_header_repeats=1"):
        b.build(make_scope(headers=[(b"x-a", b"1"), (b"x-a", b"2")]))
    assert b.build(make_scope(headers=[(b"x-a", b"1"), (b"x-b", b"2")]))["HTTP_X_B"] == "2"


def test_c21_keywords_and_limits_give_the_same_builder() -> None:
    by_keywords = builder(max_headers=7, max_header_repeats=3)
    assert by_keywords.limits == HeaderLimits(max_headers=7, max_header_repeats=3)
    with pytest.raises(TypeError, match="not both"):
        builder(max_headers=7, limits=HeaderLimits())


def test_c21_assigning_one_bound_replaces_the_limits_value() -> None:
    b = builder()
    before = b.limits
    b.max_header_repeats = 1
    assert b.limits == HeaderLimits(max_headers=100, max_header_repeats=1)
    assert before == DEFAULT_HEADER_LIMITS  # the old value was replaced, not changed
    with pytest.raises(RequestRejected, match="max_header_repeats=1"):
        b.build(make_scope(headers=[(b"x-a", b"1"), (b"x-a", b"2")]))
    b.max_headers = 1
    assert b.limits.max_headers == 1


def test_c21_build_environ_keeps_its_keywords() -> None:
    scope = make_scope(headers=[(b"x-a", b"1")] * 3)
    with pytest.raises(RequestRejected, match="max_header_repeats=2"):
        build_environ(scope, errors=io.StringIO(), multithread=True, max_header_repeats=2)
    environ = build_environ(scope, errors=io.StringIO(), multithread=True, max_header_repeats=3)
    assert environ["HTTP_X_A"] == "1, 1, 1"


HEADERS = [("Content-Type", "text/plain"), ("Set-Cookie", " a=1"), ("Content-Length", "2")]


def test_c16_c22_cached_start_gives_what_encode_response_start_gives() -> None:
    expected = encode_response_start("200 OK", HEADERS)
    assert expected == (200, [(b"content-type", b"text/plain"), (b"set-cookie", b"a=1"),
                              (b"content-length", b"2")], 2)  # fmt: skip
    first = encode_response_start_cached("200 OK", list(HEADERS))
    second = encode_response_start_cached("200 OK", list(HEADERS))
    assert first == second == expected
    first[1].append((b"x-changed", b"by the caller"))
    assert encode_response_start_cached("200 OK", list(HEADERS)) == expected


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        pytest.param("200 OK", [("X-A", "a\nb")], id="injection"),
        pytest.param("2000 OK", [], id="status"),
        pytest.param("200 OK", [("Content-Length", "1"), ("Content-Length", "2")], id="cl"),
        pytest.param("200 OK", [["X-A", "b"]], id="unhashable-list-pair-ok"),
    ],
)
def test_c22_cached_start_raises_what_encode_response_start_raises(
    status: str, headers: Any
) -> None:
    try:
        expected: Any = encode_response_start(status, headers)
    except AppProtocolError as exc:
        for _ in range(2):
            with pytest.raises(AppProtocolError) as info:
                encode_response_start_cached(status, headers)
            assert str(info.value) == str(exc)
    else:
        assert encode_response_start_cached(status, headers) == expected


def test_cached_start_memo_is_bounded() -> None:
    for i in range(_start._START_MEMO_LIMIT * 2 + 3):
        code, _, _ = encode_response_start_cached("200 OK", [("X-N", str(i))])
        assert code == 200
        assert len(_start._START_MEMO) <= _start._START_MEMO_LIMIT
