"""Tests for asgibridge._codec: scope <-> environ translation and start_response checks.

Test names carry the conformance rule they cover (see docs/conformance.md).
"""

from __future__ import annotations

import io
import wsgiref.validate
from collections.abc import Iterable
from typing import Any

import pytest

from asgibridge._codec import _environ, build_environ, encode_response_start, environ_to_scope
from asgibridge.errors import AppProtocolError, RequestRejected, ServerProtocolError
from tests.support.scopes import cgi_environ as make_environ
from tests.support.scopes import uvicorn_scope as make_scope

Headers = list[tuple[bytes, bytes]]


def environ_for(**overrides: Any) -> dict[str, Any]:
    return build_environ(make_scope(**overrides), errors=io.StringIO(), multithread=True)


def with_headers(headers: Headers, **kwargs: Any) -> dict[str, Any]:
    return build_environ(
        make_scope(headers=headers), errors=io.StringIO(), multithread=True, **kwargs
    )


# ---------------------------------------------------------------- C1 SCRIPT_NAME / PATH_INFO


@pytest.mark.parametrize(
    ("root_path", "path", "raw_path", "script_name", "path_info"),
    [
        pytest.param("", "/x", None, "", "/x", id="no-root"),
        pytest.param("/", "/x", None, "", "/x", id="root-slash-is-empty"),
        pytest.param("/app", "/app/x", None, "/app", "/x", id="prefix-removed"),
        pytest.param("/app", "/app", None, "/app", "", id="exact-root-gives-empty-path"),
        pytest.param("/app", "/app/", None, "/app", "/", id="root-with-slash"),
        pytest.param("/app/", "/app/x", None, "/app", "/x", id="trailing-slash-stripped"),
        pytest.param("/app", "/application", None, "/app", "/application", id="not-on-boundary"),
        pytest.param("/app", "/x", None, "/app", "/x", id="path-relative-to-root"),
        pytest.param("app", "/app/x", None, "/app", "/x", id="leading-slash-added"),
        pytest.param("/a/b", "/a/b/c", None, "/a/b", "/c", id="multi-segment-root"),
        pytest.param(
            "/caf\xe9", "/caf\xe9/x", None, "/caf\xc3\xa9", "/x", id="non-ascii-root-latin1-space"
        ),
        pytest.param(
            "/app", "/app/a b", b"/app/a%20b", "/app", "/a b", id="uvicorn-raw-path-has-root"
        ),
        pytest.param("/app", "/app/\ufffd", b"/app/%FF", "/app", "/\xff", id="root-and-percent-ff"),
        pytest.param("/app", "/\ufffd", b"/%FF", "/app", "/\xff", id="hypercorn-relative-raw"),
    ],
)
def test_c1_script_name_and_path_info(
    root_path: str, path: str, raw_path: bytes | None, script_name: str, path_info: str
) -> None:
    environ = environ_for(root_path=root_path, path=path, raw_path=raw_path)
    assert environ["SCRIPT_NAME"] == script_name
    assert environ["PATH_INFO"] == path_info


def test_c1_missing_root_path_key() -> None:
    scope = make_scope(path="/x")
    del scope["root_path"]
    environ = build_environ(scope, errors=io.StringIO(), multithread=False)
    assert environ["SCRIPT_NAME"] == ""
    assert environ["PATH_INFO"] == "/x"


# ---------------------------------------------------------------- C2 bytes as latin-1


def test_c2_percent_ff_is_latin1() -> None:
    environ = environ_for(path="/\ufffd", raw_path=b"/%FF")
    assert environ["PATH_INFO"] == "/\xff"


@pytest.mark.parametrize(
    ("path", "raw_path", "path_info"),
    [
        pytest.param("/caf\xe9", b"/caf%C3%A9", "/caf\xc3\xa9", id="utf8-from-raw"),
        pytest.param("/caf\xe9", None, "/caf\xc3\xa9", id="utf8-from-path"),
        pytest.param("/caf\xe9", b"", "/caf\xc3\xa9", id="empty-raw-path-ignored"),
        pytest.param("/\ufffd", b"/%FF?x=1", "/\xff", id="raw-path-query-cut"),
        pytest.param("/a/b", b"/a%2Fb", "/a/b", id="encoded-slash-decoded"),
        pytest.param("/\ufffd/x", b"/%ff/x", "/\xff/x", id="lowercase-hex"),
        pytest.param("/\udcff", None, "/\xff", id="surrogateescape-path"),
        pytest.param("/\ud800", None, "/\xed\xa0\x80", id="lone-surrogate-path"),
        pytest.param("/new/\ufffd", b"/old/%FF", "/new/\xef\xbf\xbd", id="stale-raw-path-ignored"),
        pytest.param("/new", b"/old/%FF", "/new", id="stale-raw-path-ascii-path"),
        pytest.param("/\ufffd", "/%FF", "/\xef\xbf\xbd", id="str-raw-path-ignored"),
        pytest.param("/\xff", b"/%FF", "/\xff", id="latin1-text-path-from-environ-to-scope"),
    ],
)
def test_c2_path_info_bytes(path: str, raw_path: bytes | None, path_info: str) -> None:
    assert environ_for(path=path, raw_path=raw_path)["PATH_INFO"] == path_info


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        pytest.param(b"a=1&b=2", "a=1&b=2", id="plain"),
        pytest.param(b"a=%FF&b=\xe9", "a=%FF&b=\xe9", id="latin1-not-decoded"),
        pytest.param(b"", "", id="empty"),
    ],
)
def test_c2_query_string_latin1(query_string: bytes, expected: str) -> None:
    assert environ_for(query_string=query_string)["QUERY_STRING"] == expected


def test_c2_query_string_missing() -> None:
    scope = make_scope()
    del scope["query_string"]
    environ = build_environ(scope, errors=io.StringIO(), multithread=False)
    assert environ["QUERY_STRING"] == ""


# ---------------------------------------------------------------- CGI variables


@pytest.mark.parametrize(
    ("scope_part", "server_name", "server_port"),
    [
        pytest.param({"server": ("127.0.0.1", 8000)}, "127.0.0.1", "8000", id="server-tuple"),
        pytest.param({"server": ["::1", 443]}, "::1", "443", id="server-list-ipv6"),
        pytest.param(
            {"server": None, "headers": [(b"host", b"example.com:8080")]},
            "example.com",
            "8080",
            id="host-with-port",
        ),
        pytest.param(
            {"server": None, "scheme": "https", "headers": [(b"host", b"example.com")]},
            "example.com",
            "443",
            id="host-https-default-port",
        ),
        pytest.param(
            {"server": ("/tmp/app.sock", None), "headers": [(b"host", b"h.test:81")]},
            "h.test",
            "81",
            id="unix-socket-uses-host",
        ),
        pytest.param(
            {"server": None, "headers": [(b"host", b"[::1]:8080")]}, "[::1]", "8080", id="ipv6-host"
        ),
        pytest.param(
            {"server": None, "headers": [(b"host", b"[::1]")]},
            "[::1]",
            "80",
            id="ipv6-host-no-port",
        ),
        pytest.param(
            {"server": None, "headers": [(b"host", b"h.test:abc")]}, "h.test", "80", id="bad-port"
        ),
        pytest.param({"server": None, "headers": []}, "localhost", "80", id="nothing-http"),
        pytest.param(
            {"server": None, "headers": [], "scheme": "https"},
            "localhost",
            "443",
            id="nothing-https",
        ),
    ],
)
def test_c6_server_name_and_port(
    scope_part: dict[str, Any], server_name: str, server_port: str
) -> None:
    environ = environ_for(**scope_part)
    assert environ["SERVER_NAME"] == server_name
    assert environ["SERVER_PORT"] == server_port


def test_cgi_basic_keys() -> None:
    errors = io.StringIO()
    scope = make_scope(method="POST", http_version="2", scheme="https")
    environ = build_environ(scope, errors=errors, multithread=False)
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.errors"] is errors
    assert environ["wsgi.multithread"] is False
    assert environ["wsgi.multiprocess"] is False
    assert environ["wsgi.run_once"] is False
    assert environ["REMOTE_ADDR"] == "10.0.0.7"
    assert environ["REMOTE_PORT"] == "51234"
    assert "wsgi.input" not in environ
    assert build_environ(scope, errors=errors, multithread=True)["wsgi.multithread"] is True


def test_cgi_defaults_when_optional_keys_missing() -> None:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    environ = build_environ(scope, errors=io.StringIO(), multithread=False)
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["wsgi.url_scheme"] == "http"
    assert "REMOTE_ADDR" not in environ
    assert "REMOTE_PORT" not in environ
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("localhost", "80")


def test_client_without_port() -> None:
    environ = environ_for(client=("10.0.0.7", None))
    assert environ["REMOTE_ADDR"] == "10.0.0.7"
    assert "REMOTE_PORT" not in environ


@pytest.mark.parametrize("scope_type", ["websocket", "lifespan", None])
def test_non_http_scope_is_value_error(scope_type: str | None) -> None:
    with pytest.raises(ValueError, match="'http' scope") as info:
        environ_for(type=scope_type)
    assert not isinstance(info.value, RequestRejected)


def test_missing_method_is_server_error() -> None:
    scope = make_scope()
    del scope["method"]
    with pytest.raises(ServerProtocolError, match="method"):
        build_environ(scope, errors=io.StringIO(), multithread=False)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("host", "example.com")], id="str-pair"),
        pytest.param([(b"host", "example.com")], id="str-value"),
        pytest.param([(b"host",)], id="short-pair"),
        pytest.param([None], id="none-item"),
    ],
)
def test_malformed_headers_are_server_error(headers: Any) -> None:
    with pytest.raises(ServerProtocolError):
        environ_for(headers=headers)


def test_headers_may_be_any_iterable() -> None:
    def gen() -> Iterable[tuple[bytes, bytes]]:
        yield (b"x-a", b"1")
        yield (b"x-b", b"2")

    environ = environ_for(headers=gen())
    assert (environ["HTTP_X_A"], environ["HTTP_X_B"]) == ("1", "2")


# ---------------------------------------------------------------- EnvironBuilder templates


def builder(**kwargs: Any) -> _environ.EnvironBuilder:
    return _environ.EnvironBuilder(errors=io.StringIO(), multithread=True, **kwargs)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"root_path": "/app", "path": "/app/x"},
        {"server": None},
        {"server": ["10.1.1.1", 81]},
        {"server": ("/tmp/sock", None), "headers": [(b"host", b"h.example:8443")]},
        {"scheme": "https", "http_version": "2"},
        {"client": None, "query_string": b""},
    ],
    ids=["plain", "root", "no-server", "list-server", "unix", "https-h2", "no-client"],
)
def test_builder_gives_what_build_environ_gives(overrides: dict[str, Any]) -> None:
    errors = io.StringIO()
    b = _environ.EnvironBuilder(errors=errors, multithread=False)
    scope = make_scope(**overrides)
    for _ in range(3):  # first from a new template, then from the kept one
        assert b.build(scope) == build_environ(scope, errors=errors, multithread=False)


def test_builder_environs_are_independent_of_its_templates() -> None:
    b = builder(extra={"wsgi.input_terminated": True})
    first = b.build(make_scope())
    first["SERVER_NAME"] = "mutated by the app"
    first["wsgi.input_terminated"] = False
    first["HTTP_X_LEFTOVER"] = "1"
    second = b.build(make_scope(headers=[]))
    assert second["SERVER_NAME"] == "127.0.0.1"
    assert second["wsgi.input_terminated"] is True
    assert "HTTP_X_LEFTOVER" not in second and "HTTP_HOST" not in second


def test_builder_keeps_one_template_per_server_shape_and_is_bounded() -> None:
    b = builder()
    for _ in range(3):
        b.build(make_scope())
        b.build(make_scope(root_path="/app", path="/app/x"))
    assert len(b._templates) == 2
    for port in range(_environ._TEMPLATE_LIMIT * 3):
        environ = b.build(make_scope(server=("127.0.0.1", port)))
        assert environ["SERVER_PORT"] == str(port)
    assert len(b._templates) <= _environ._TEMPLATE_LIMIT


def test_builder_extra_keys_reach_every_environ_but_headers_do_not_replace_them() -> None:
    b = builder(extra={"wsgi.file_wrapper": "wrapper"})
    environ = b.build(make_scope(headers=[(b"server-name", b"evil"), (b"host", b"h")]))
    assert environ["wsgi.file_wrapper"] == "wrapper"
    assert environ["SERVER_NAME"] == "127.0.0.1"
    assert environ["HTTP_SERVER_NAME"] == "evil"


# ---------------------------------------------------------------- C3 latin-1 headers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(b"caf\xe9", "caf\xe9", id="latin1-e-acute"),
        pytest.param(b"caf\xc3\xa9", "caf\xc3\xa9", id="utf8-bytes-as-latin1"),
        pytest.param(b"a\tb", "a\tb", id="tab-allowed"),
        pytest.param(b"\xa0\xff\x7f", "\xa0\xff\x7f", id="non-printable-but-legal"),
        pytest.param(b"", "", id="empty-value"),
    ],
)
def test_c3_request_header_values_latin1(value: bytes, expected: str) -> None:
    assert with_headers([(b"x-name", value)])["HTTP_X_NAME"] == expected


@pytest.mark.parametrize(
    ("name", "key"),
    [
        pytest.param(b"x-custom-thing", "HTTP_X_CUSTOM_THING", id="lowercase"),
        pytest.param(b"X-Custom-Thing", "HTTP_X_CUSTOM_THING", id="mixed-case"),
        pytest.param(b"accept", "HTTP_ACCEPT", id="single-word"),
    ],
)
def test_c3_request_header_names(name: bytes, key: str) -> None:
    assert with_headers([(name, b"v")])[key] == "v"


def test_c3_response_header_latin1_value() -> None:
    code, headers, length = encode_response_start("200 OK", [("X-Name", "caf\xe9")])
    assert code == 200
    assert headers == [(b"x-name", b"caf\xe9")]
    assert length is None


def test_c3_response_header_not_latin1_rejected() -> None:
    with pytest.raises(AppProtocolError, match=r"X-Name.*latin-1"):
        encode_response_start("200 OK", [("X-Name", "\u20ac")])


def test_c3_response_header_names_lowercased() -> None:
    _, headers, _ = encode_response_start(
        "200 OK", [("Content-Type", "text/plain"), ("X-Frame-Options", "DENY")]
    )
    assert headers == [(b"content-type", b"text/plain"), (b"x-frame-options", b"DENY")]


# ---------------------------------------------------------------- C4 duplicates


def test_c4_cookie_joined_with_semicolon() -> None:
    environ = with_headers([(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"cookie", b"c=3")])
    assert environ["HTTP_COOKIE"] == "a=1; b=2; c=3"


@pytest.mark.parametrize(
    ("headers", "key", "expected"),
    [
        pytest.param(
            [(b"accept", b"text/html"), (b"accept", b"*/*")],
            "HTTP_ACCEPT",
            "text/html, */*",
            id="accept",
        ),
        pytest.param(
            [(b"x-forwarded-for", b"1.1.1.1"), (b"X-Forwarded-For", b"2.2.2.2")],
            "HTTP_X_FORWARDED_FOR",
            "1.1.1.1, 2.2.2.2",
            id="case-insensitive-merge",
        ),
        pytest.param(
            [(b"content-type", b"a/b"), (b"content-type", b"c/d")],
            "CONTENT_TYPE",
            "a/b, c/d",
            id="content-type",
        ),
    ],
)
def test_c4_duplicates_joined_with_comma(headers: Headers, key: str, expected: str) -> None:
    assert with_headers(headers)[key] == expected


# ---------------------------------------------------------------- C5 underscores


def test_c5_underscore_headers_dropped() -> None:
    environ = with_headers(
        [
            (b"x-forwarded-for", b"1.1.1.1"),
            (b"x_forwarded_for", b"6.6.6.6"),
            (b"content_length", b"999"),
            (b"x_only_underscore", b"v"),
        ]
    )
    assert environ["HTTP_X_FORWARDED_FOR"] == "1.1.1.1"
    assert "CONTENT_LENGTH" not in environ
    assert "HTTP_X_ONLY_UNDERSCORE" not in environ
    assert "HTTP_CONTENT_LENGTH" not in environ


def test_c5_underscore_header_first_does_not_spoof() -> None:
    environ = with_headers([(b"x_real_ip", b"6.6.6.6"), (b"x-real-ip", b"1.1.1.1")])
    assert environ["HTTP_X_REAL_IP"] == "1.1.1.1"


@pytest.mark.parametrize(
    ("name", "spoofed"),
    [
        pytest.param(b"x-forwarded-\xdfl", "HTTP_X_FORWARDED_SSL", id="sharp-s-upper-is-SS"),
        pytest.param(b"x-forwarded-pro\xdf", "HTTP_X_FORWARDED_PROSS", id="sharp-s-end"),
        pytest.param(b"x-\xffy", "HTTP_X_\u0178Y", id="y-diaeresis"),
        pytest.param(b"x-\xe9", "HTTP_X_\xc9", id="latin1-name-dropped-not-uppercased"),
        pytest.param(b"x-real ip", "HTTP_X_REAL IP", id="space"),
        pytest.param(b"x-real:ip", "HTTP_X_REAL:IP", id="colon"),
        pytest.param(b"x(y)", "HTTP_X(Y)", id="separator"),
        pytest.param(b"\xb5-id", "HTTP_\u039c_ID", id="micro-sign-upper-is-greek"),
    ],
)
def test_c5_only_ascii_token_names_become_cgi_keys(name: bytes, spoofed: str) -> None:
    environ = with_headers([(name, b"on"), (b"x-forwarded-proto", b"https")])
    assert spoofed not in environ
    assert not any(k.startswith("HTTP_") and not k.isascii() for k in environ)
    assert environ["HTTP_X_FORWARDED_PROTO"] == "https"
    headers = [k for k in environ if k.startswith("HTTP_")]
    assert headers == ["HTTP_X_FORWARDED_PROTO"]


def test_c5_non_token_name_cannot_spoof_a_later_real_header() -> None:
    environ = with_headers([(b"x-forwarded-\xdfl", b"on"), (b"x-forwarded-ssl", b"off")])
    assert environ["HTTP_X_FORWARDED_SSL"] == "off"


# ---------------------------------------------------------------- C6 CGI shape


@pytest.mark.parametrize(
    "name", [b"content-type", b"Content-Type", b"CONTENT-TYPE"], ids=["lower", "title", "upper"]
)
def test_c6_content_type_no_http_prefix(name: bytes) -> None:
    environ = with_headers([(name, b"text/plain"), (b"content-length", b"5")])
    assert environ["CONTENT_TYPE"] == "text/plain"
    assert environ["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert "HTTP_CONTENT_LENGTH" not in environ


SCOPES_FOR_SHAPE = [
    pytest.param(make_scope(), id="uvicorn-like"),
    pytest.param(
        make_scope(
            server=("::1", 8443),
            client=("::1", 40000),
            scheme="https",
            root_path="/app",
            path="/app/\ufffd",
            raw_path=b"/app/%FF",
            headers=[(b"content-type", b"text/plain"), (b"content-length", b"3")],
        ),
        id="https-root-body",
    ),
    pytest.param(
        make_scope(server=None, client=None, headers=[(b"host", b"h:81")]), id="no-addresses"
    ),
    pytest.param(make_scope(root_path="/app", path="/app"), id="empty-path-info"),
]


@pytest.mark.parametrize("scope", SCOPES_FOR_SHAPE)
def test_c6_all_cgi_values_are_str(scope: dict[str, Any]) -> None:
    environ = build_environ(scope, errors=io.StringIO(), multithread=True)
    for key, value in environ.items():
        if "." not in key:
            assert type(value) is str, key


@pytest.mark.parametrize("scope", SCOPES_FOR_SHAPE)
def test_c6_wsgiref_validate_passes(scope: dict[str, Any]) -> None:
    environ = build_environ(scope, errors=io.StringIO(), multithread=True)
    environ["wsgi.input"] = io.BytesIO(b"abc")
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append(status)
        return lambda data: None

    result = wsgiref.validate.validator(app)(environ, start_response)
    try:
        assert list(result) == [b"ok"]
    finally:
        result.close()  # type: ignore[attr-defined]
    assert seen == ["200 OK"]


# ---------------------------------------------------------------- Content-Length smuggling


def test_content_length_identical_duplicates_collapse() -> None:
    environ = with_headers([(b"content-length", b"5"), (b"content-length", b"5")])
    assert environ["CONTENT_LENGTH"] == "5"


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([b"5", b"6"], id="differ"),
        pytest.param([b"5", b"05"], id="differ-leading-zero"),
        pytest.param([b"5", b"5", b"7"], id="third-differs"),
    ],
)
def test_content_length_conflict_rejected(values: list[bytes]) -> None:
    with pytest.raises(RequestRejected, match="smuggling") as info:
        with_headers([(b"content-length", v) for v in values])
    assert info.value.status == 400


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"5a", id="trailing-letter"),
        pytest.param(b"-1", id="negative"),
        pytest.param(b"+5", id="plus"),
        pytest.param(b" 5", id="space"),
        pytest.param(b"5, 5", id="list"),
        pytest.param(b"0x10", id="hex"),
        pytest.param("\u0665".encode(), id="arabic-digit-utf8"),
        pytest.param(b"\xb2", id="latin1-superscript-two"),
    ],
)
def test_content_length_not_digits_rejected(value: bytes) -> None:
    with pytest.raises(RequestRejected, match="Content-Length") as info:
        with_headers([(b"content-length", value)])
    assert info.value.status == 400


# ---------------------------------------------------------------- request header injection


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param(b"x-a", b"v\r\nx-evil: 1", id="crlf-in-value"),
        pytest.param(b"x-a", b"v\nx", id="lf-in-value"),
        pytest.param(b"x-a", b"v\rx", id="cr-in-value"),
        pytest.param(b"x-a", b"v\x00x", id="nul-in-value"),
        pytest.param(b"cookie", b"a=1\r\n", id="crlf-in-cookie"),
        pytest.param(b"x-a\r\nx-evil", b"v", id="crlf-in-name"),
        pytest.param(b"x-a\x00", b"v", id="nul-in-name"),
        pytest.param(b"", b"v", id="empty-name"),
    ],
)
def test_request_header_injection_rejected(name: bytes, value: bytes) -> None:
    with pytest.raises(RequestRejected, match="CR, LF or NUL") as info:
        with_headers([(name, value)])
    assert info.value.status == 400


def test_injection_name_not_cached() -> None:
    name = b"x-bad\nname"
    with pytest.raises(RequestRejected):
        with_headers([(name, b"v")])
    assert name not in _environ._REQUEST_KEYS
    with pytest.raises(RequestRejected):
        with_headers([(name, b"v")])


# ---------------------------------------------------------------- C21 bounds


def _many(count: int) -> Headers:
    return [(b"x-h-%d" % i, b"v") for i in range(count)]


def test_c21_too_many_headers_rejected() -> None:
    with pytest.raises(RequestRejected, match=r"101 headers.*max_headers=100") as info:
        with_headers(_many(101))
    assert info.value.status == 400


def test_c21_header_count_at_limit_accepted() -> None:
    environ = with_headers(_many(100))
    assert environ["HTTP_X_H_99"] == "v"


def test_c21_custom_max_headers() -> None:
    with pytest.raises(RequestRejected, match="max_headers=5"):
        with_headers(_many(6), max_headers=5)
    assert with_headers(_many(150), max_headers=200)["HTTP_X_H_149"] == "v"


def test_c21_dropped_headers_still_count() -> None:
    headers = [(b"x_h_%d" % i, b"v") for i in range(101)]
    with pytest.raises(RequestRejected, match="max_headers"):
        with_headers(headers)


def test_c21_too_many_repeats_rejected() -> None:
    with pytest.raises(RequestRejected, match=r"'x-a'.*max_header_repeats=32") as info:
        with_headers([(b"x-a", b"v")] * 33)
    assert info.value.status == 400


def test_c21_repeats_at_limit_accepted() -> None:
    environ = with_headers([(b"x-a", b"v")] * 32)
    assert environ["HTTP_X_A"] == ", ".join(["v"] * 32)


@pytest.mark.parametrize(
    "name", [b"cookie", b"content-length", b"content-type"], ids=["cookie", "cl", "ct"]
)
def test_c21_repeats_bound_applies_to_special_headers(name: bytes) -> None:
    with pytest.raises(RequestRejected, match="max_header_repeats=3"):
        with_headers([(name, b"1")] * 4, max_header_repeats=3)


def test_c21_repeats_counted_across_spellings() -> None:
    headers = [(b"x-a", b"1"), (b"X-A", b"2"), (b"x-A", b"3")]
    with pytest.raises(RequestRejected, match="max_header_repeats=2"):
        with_headers(headers, max_header_repeats=2)


def test_header_key_cache_is_bounded() -> None:
    limit = _environ._CACHE_LIMIT
    for start in range(0, limit + 200, 90):
        headers = [(b"x-fill-%d" % i, b"v") for i in range(start, start + 90)]
        environ = with_headers(headers)
        assert environ[f"HTTP_X_FILL_{start + 89}"] == "v"
    assert len(_environ._REQUEST_KEYS) <= limit


# ---------------------------------------------------------------- encode_response_start


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param("200 OK", 200, id="ok"),
        pytest.param("404 Not Found", 404, id="multi-word-reason"),
        pytest.param("200", 200, id="no-reason"),
        pytest.param("200 ", 200, id="empty-reason"),
        pytest.param("100 Continue", 100, id="lowest"),
        pytest.param("999 Odd", 999, id="highest"),
        pytest.param("299 caf\xe9", 299, id="latin1-reason"),
    ],
)
def test_status_line_accepted(status: str, code: int) -> None:
    assert encode_response_start(status, [])[0] == code


@pytest.mark.parametrize(
    "status",
    [
        pytest.param("OK", id="no-code"),
        pytest.param("", id="empty"),
        pytest.param("20 OK", id="two-digits"),
        pytest.param("2000 OK", id="four-digits"),
        pytest.param("200OK", id="no-space"),
        pytest.param("099 Low", id="below-100"),
        pytest.param("000", id="zero"),
        pytest.param(" 200 OK", id="leading-space"),
        pytest.param("\u0662\u0660\u0660 OK", id="non-ascii-digits"),
        pytest.param("200 OK\r\nX-Evil: 1", id="crlf-injection"),
        pytest.param("200 OK\x00", id="nul"),
        pytest.param(200, id="int"),
        pytest.param(b"200 OK", id="bytes"),
        pytest.param(None, id="none"),
    ],
)
def test_bad_status_rejected(status: Any) -> None:
    with pytest.raises(AppProtocolError, match="status"):
        encode_response_start(status, [])


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        pytest.param({"X-A": "1"}, "list", id="dict-not-list"),
        pytest.param("X-A: 1", "list", id="str-not-list"),
        pytest.param([("X-A", "1", "2")], "tuple of two", id="triple"),
        pytest.param(["X-A"], "tuple of two", id="bare-str"),
        pytest.param([(b"X-A", "1")], "must be a str", id="bytes-name"),
        pytest.param([("X-A", b"1")], "must be str", id="bytes-value"),
        pytest.param([("X-A", 1)], "must be str", id="int-value"),
        pytest.param([("X A", "1")], "not a valid HTTP field name", id="space-in-name"),
        pytest.param([("X-A:", "1")], "not a valid HTTP field name", id="colon-in-name"),
        pytest.param([("", "1")], "not a valid HTTP field name", id="empty-name"),
        pytest.param([("X-A\r\nX-B", "1")], "not a valid HTTP field name", id="crlf-in-name"),
        pytest.param([("X-\xe9", "1")], "not a valid HTTP field name", id="non-ascii-name"),
        pytest.param([("X-A", "1\r\nX-Evil: 2")], "control character", id="crlf-in-value"),
        pytest.param([("X-A", "1\n")], "control character", id="lf-in-value"),
        pytest.param([("X-A", "1\x00")], "control character", id="nul-in-value"),
        pytest.param([("X-A", "1\x0b")], "control character", id="vt-in-value"),
        pytest.param([("X-A", "1\x7f")], "control character", id="del-in-value"),
        pytest.param([("X-A", "\u2603")], "latin-1", id="not-latin1"),
    ],
)
def test_bad_response_headers_rejected(headers: Any, match: str) -> None:
    with pytest.raises(AppProtocolError, match=match):
        encode_response_start("200 OK", headers)


def test_response_headers_tuple_and_list_pairs_accepted() -> None:
    _, headers, _ = encode_response_start("200 OK", (("X-A", "1"), ["X-B", "2"]))  # type: ignore[arg-type]
    assert headers == [(b"x-a", b"1"), (b"x-b", b"2")]


def test_response_header_tab_and_high_latin1_allowed() -> None:
    _, headers, _ = encode_response_start("200 OK", [("X-A", "a\tb\xa0\xff")])
    assert headers == [(b"x-a", b"a\tb\xa0\xff")]


def test_response_repeated_headers_kept() -> None:
    _, headers, _ = encode_response_start("200 OK", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    assert headers == [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]


@pytest.mark.parametrize(
    ("headers", "length", "count"),
    [
        pytest.param([("Content-Length", "12")], 12, 1, id="present"),
        pytest.param([("content-length", "0")], 0, 1, id="zero"),
        pytest.param([("X-A", "1")], None, 0, id="absent"),
        pytest.param([("Content-Length", "7"), ("CONTENT-LENGTH", "7")], 7, 1, id="same-twice"),
    ],
)
def test_c16_response_content_length(
    headers: list[tuple[str, str]], length: int | None, count: int
) -> None:
    _, encoded, content_length = encode_response_start("200 OK", headers)
    assert content_length == length
    assert sum(1 for name, _ in encoded if name == b"content-length") == count


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("Content-Length", "abc")], id="letters"),
        pytest.param([("Content-Length", "")], id="empty"),
        pytest.param([("Content-Length", "-1")], id="negative"),
        pytest.param([("Content-Length", "1.5")], id="decimal"),
        pytest.param([("Content-Length", "\u0665")], id="non-ascii-digit"),
        pytest.param([("Content-Length", "5"), ("Content-Length", "6")], id="conflict"),
    ],
)
def test_c16_response_bad_content_length(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(AppProtocolError, match="Content-Length"):
        encode_response_start("200 OK", headers)


# ---------------------------------------------------------------- A7 environ_to_scope


def test_a7_scope_basics() -> None:
    scope = environ_to_scope(make_environ())
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/items/42"
    assert scope["raw_path"] == b"/items/42"
    assert scope["root_path"] == ""
    assert scope["query_string"] == b"a=1"
    assert scope["client"] == ("10.0.0.7", 51234)
    assert scope["server"] == ("example.com", 8080)
    assert scope["headers"] == [(b"host", b"example.com:8080")]
    assert "extensions" not in scope
    assert "state" not in scope


@pytest.mark.parametrize(
    ("protocol", "version"),
    [
        pytest.param("HTTP/1.1", "1.1", id="1.1"),
        pytest.param("HTTP/1.0", "1.0", id="1.0"),
        pytest.param("HTTP/2", "2", id="2"),
        pytest.param("HTTP/2.0", "2", id="2.0"),
        pytest.param("SPDY/3", "1.1", id="unknown"),
        pytest.param(None, "1.1", id="missing"),
    ],
)
def test_a7_http_version(protocol: str | None, version: str) -> None:
    assert environ_to_scope(make_environ(SERVER_PROTOCOL=protocol))["http_version"] == version


@pytest.mark.parametrize(
    ("script_name", "path_info", "root_path", "path", "raw_path"),
    [
        pytest.param("", "/x", "", "/x", b"/x", id="no-script-name"),
        pytest.param("/app", "/x", "/app", "/app/x", b"/app/x", id="script-name"),
        pytest.param("/app", "", "/app", "/app", b"/app", id="empty-path-info"),
        pytest.param(
            "/caf\xc3\xa9", "/a b", "/caf\xe9", "/caf\xe9/a b", b"/caf%C3%A9/a%20b", id="utf8"
        ),
        pytest.param("", "/\xff", "", "/\xff", b"/%FF", id="invalid-utf8-kept-latin1"),
        pytest.param("", "/a;b=c@d", "", "/a;b=c@d", b"/a;b=c@d", id="safe-chars-kept"),
        pytest.param("", "/a?b#c%", "", "/a?b#c%", b"/a%3Fb%23c%25", id="reserved-quoted"),
    ],
)
def test_a7_paths(
    script_name: str, path_info: str, root_path: str, path: str, raw_path: bytes
) -> None:
    scope = environ_to_scope(make_environ(SCRIPT_NAME=script_name, PATH_INFO=path_info))
    assert scope["root_path"] == root_path
    assert scope["path"] == path
    assert scope["raw_path"] == raw_path
    assert scope["path"].startswith(scope["root_path"])


def test_a7_root_path_from_script_name_off() -> None:
    scope = environ_to_scope(
        make_environ(SCRIPT_NAME="/app", PATH_INFO="/x"), root_path_from_script_name=False
    )
    assert scope["root_path"] == ""
    assert scope["path"] == "/app/x"


@pytest.mark.parametrize(
    ("extra", "raw_path"),
    [
        pytest.param({"REQUEST_URI": "/items/%34%32?a=1"}, b"/items/%34%32", id="request-uri"),
        pytest.param(
            {"RAW_URI": "/items/4%32", "REQUEST_URI": "/items/%34%32"},
            b"/items/4%32",
            id="raw-uri-preferred",
        ),
        pytest.param(
            {"REQUEST_URI": "http://example.com/items/%342?x"},
            b"/items/%342",
            id="absolute-form",
        ),
        pytest.param({"REQUEST_URI": "/other/path"}, b"/items/42", id="stale-uri-ignored"),
        pytest.param({"REQUEST_URI": "*"}, b"/items/42", id="asterisk-ignored"),
    ],
)
def test_a7_raw_path_from_server(extra: dict[str, str], raw_path: bytes) -> None:
    assert environ_to_scope(make_environ(**extra))["raw_path"] == raw_path


def test_a7_headers() -> None:
    environ = make_environ(
        HTTP_X_FORWARDED_FOR="1.1.1.1",
        HTTP_X_NAME="caf\xe9",
        CONTENT_TYPE="text/plain",
        CONTENT_LENGTH="5",
        HTTP_CONTENT_TYPE="bogus/duplicate",
        HTTP_CONTENT_LENGTH="999",
    )
    headers = environ_to_scope(environ)["headers"]
    assert sorted(headers) == sorted(
        [
            (b"host", b"example.com:8080"),
            (b"x-forwarded-for", b"1.1.1.1"),
            (b"x-name", b"caf\xe9"),
            (b"content-type", b"text/plain"),
            (b"content-length", b"5"),
        ]
    )
    for name, value in headers:
        assert type(name) is bytes and type(value) is bytes
        assert name == name.lower()


def test_a7_headers_keep_environ_order_and_empty_values() -> None:
    environ = make_environ(HTTP_X_B="2", HTTP_X_EMPTY="", HTTP_X_A="1")
    names = [name for name, _ in environ_to_scope(environ)["headers"]]
    assert names == [b"host", b"x-b", b"x-empty", b"x-a"]
    assert (b"x-empty", b"") in environ_to_scope(environ)["headers"]


def test_a7_header_plan_follows_each_requests_keys() -> None:
    """The per-key-set header plan is not reused for an environ with other keys."""
    first = environ_to_scope(make_environ(HTTP_X_ONE="1"))["headers"]
    second = environ_to_scope(make_environ(HTTP_X_TWO="2"))["headers"]
    again = environ_to_scope(make_environ(HTTP_X_ONE="one"))["headers"]
    assert (b"x-one", b"1") in first and all(n != b"x-two" for n, _ in first)
    assert (b"x-two", b"2") in second and all(n != b"x-one" for n, _ in second)
    assert (b"x-one", b"one") in again


def test_a7_cgi_headers_follow_the_others_and_are_read_per_request() -> None:
    """CONTENT_TYPE then CONTENT_LENGTH come last whatever the environ order; the plan
    (memoised by the keys) never remembers their values, or whether they were empty."""
    environ = {"CONTENT_LENGTH": "3", "CONTENT_TYPE": "text/plain", **make_environ(HTTP_X_A="1")}
    expected = [(b"host", b"example.com:8080"), (b"x-a", b"1")]
    assert environ_to_scope(environ)["headers"] == [
        *expected,
        (b"content-type", b"text/plain"),
        (b"content-length", b"3"),
    ]
    same_keys = {**environ, "CONTENT_LENGTH": "", "CONTENT_TYPE": None}
    assert environ_to_scope(same_keys)["headers"] == expected
    same_keys["CONTENT_LENGTH"] = "7"
    assert environ_to_scope(same_keys)["headers"] == [*expected, (b"content-length", b"7")]


def test_a7_client_port_missing_or_not_a_number() -> None:
    """granian sends REMOTE_ADDR without REMOTE_PORT: the port is 0, as for a bad one."""
    environ = make_environ()
    del environ["REMOTE_PORT"]
    assert environ_to_scope(environ)["client"] == ("10.0.0.7", 0)
    for port, expected in (("51234", 51234), (51235, 51235), (" 8", 8), ("8x", 0), (None, 0)):
        environ["REMOTE_PORT"] = port
        assert environ_to_scope(environ)["client"] == ("10.0.0.7", expected)


def test_a7_non_text_header_value_left_out() -> None:
    environ = make_environ(HTTP_X_BROKEN=b"bytes", HTTP_X_OK="fine")
    headers = environ_to_scope(environ)["headers"]
    assert (b"x-ok", b"fine") in headers
    assert all(name != b"x-broken" for name, _ in headers)


def test_a7_header_plan_cache_is_bounded() -> None:
    from asgibridge._codec import _scope

    for i in range(_scope._CACHE_LIMIT + 10):
        scope = environ_to_scope(make_environ(**{f"HTTP_X_CHURN_{i}": str(i)}))
        assert (f"x-churn-{i}".encode(), str(i).encode()) in scope["headers"]
    assert len(_scope._HEADER_PLANS) <= _scope._CACHE_LIMIT


@pytest.mark.parametrize(
    ("uri", "raw_path"),
    [
        pytest.param("/items/42", b"/items/42", id="same-path"),
        pytest.param("/items/42?q=%41", b"/items/42", id="same-path-with-query"),
        pytest.param("/items/%34%32", b"/items/%34%32", id="escaped-same-path"),
        pytest.param("/items/43", b"/items/42", id="other-path-ignored"),
    ],
)
def test_a7_raw_path_fast_and_slow_paths_agree(uri: str, raw_path: bytes) -> None:
    assert environ_to_scope(make_environ(RAW_URI=uri))["raw_path"] == raw_path


def test_a7_empty_content_headers_omitted() -> None:
    headers = environ_to_scope(make_environ(CONTENT_TYPE="", CONTENT_LENGTH=""))["headers"]
    assert [name for name, _ in headers] == [b"host"]


@pytest.mark.parametrize(
    ("extra", "client", "server"),
    [
        pytest.param({}, ("10.0.0.7", 51234), ("example.com", 8080), id="full"),
        pytest.param({"REMOTE_PORT": None}, ("10.0.0.7", 0), ("example.com", 8080), id="no-port"),
        pytest.param({"REMOTE_PORT": "x"}, ("10.0.0.7", 0), ("example.com", 8080), id="bad-port"),
        pytest.param({"REMOTE_ADDR": None}, None, ("example.com", 8080), id="no-client"),
        pytest.param(
            {"SERVER_PORT": "", "wsgi.url_scheme": "https"},
            ("10.0.0.7", 51234),
            ("example.com", 443),
            id="server-port-default",
        ),
        pytest.param({"SERVER_NAME": None}, ("10.0.0.7", 51234), None, id="no-server"),
    ],
)
def test_a7_client_and_server(
    extra: dict[str, Any], client: tuple[str, int] | None, server: tuple[str, int] | None
) -> None:
    environ = make_environ(**extra)
    for key in [k for k, v in extra.items() if v is None]:
        del environ[key]
    scope = environ_to_scope(environ)
    assert scope["client"] == client
    assert scope["server"] == server


def test_a7_extensions_and_state() -> None:
    state = {"db": object()}
    extensions: dict[str, dict[str, Any]] = {"http.response.pathsend": {}}
    scope = environ_to_scope(make_environ(), extensions=extensions, state=state)
    assert scope["extensions"] is extensions
    assert scope["state"] == state
    assert scope["state"] is not state  # a shallow copy per request
    assert scope["state"]["db"] is state["db"]


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="plain"),
        pytest.param(
            {"root_path": "/app", "path": "/app/caf\xe9", "raw_path": b"/app/caf%C3%A9"},
            id="root-and-utf8",
        ),
        pytest.param({"path": "/a b/c", "raw_path": b"/a%20b/c"}, id="space"),
        pytest.param({"query_string": b"q=caf%C3%A9&x=\xe9"}, id="query-bytes"),
        pytest.param({"method": "DELETE", "http_version": "1.0"}, id="method-version"),
        pytest.param({"scheme": "https", "server": ("h.test", 443)}, id="https"),
        pytest.param(
            {
                "headers": [
                    (b"host", b"h.test"),
                    (b"x-name", b"caf\xe9"),
                    (b"cookie", b"a=1; b=2"),
                    (b"content-type", b"application/json"),
                    (b"content-length", b"2"),
                ]
            },
            id="headers",
        ),
    ],
)
def test_round_trip_scope_environ_scope(overrides: dict[str, Any]) -> None:
    scope = make_scope(**overrides)
    back = environ_to_scope(build_environ(scope, errors=io.StringIO(), multithread=False))
    for key in ("path", "root_path", "raw_path", "query_string", "method", "scheme", "server"):
        assert back[key] == scope[key], key
    assert back["http_version"] == scope["http_version"]
    assert back["client"] == scope["client"]
    assert sorted(back["headers"]) == sorted(scope["headers"])


def test_round_trip_percent_ff_keeps_raw_path() -> None:
    scope = make_scope(path="/\ufffd", raw_path=b"/%FF")
    back = environ_to_scope(build_environ(scope, errors=io.StringIO(), multithread=False))
    assert back["raw_path"] == b"/%FF"
    assert back["path"] == "/\xff"


def test_round_trip_joined_duplicates() -> None:
    scope = make_scope(headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"x-a", b"1")])
    back = environ_to_scope(build_environ(scope, errors=io.StringIO(), multithread=False))
    assert sorted(back["headers"]) == [(b"cookie", b"a=1; b=2"), (b"x-a", b"1")]


def test_round_trip_environ_scope_environ() -> None:
    environ = make_environ(
        SCRIPT_NAME="/app",
        PATH_INFO="/caf\xc3\xa9/\xff",
        QUERY_STRING="x=%FF",
        HTTP_X_NAME="caf\xe9",
        CONTENT_TYPE="text/plain",
        CONTENT_LENGTH="3",
    )
    back = build_environ(environ_to_scope(environ), errors=io.StringIO(), multithread=False)
    for key in (
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "HTTP_X_NAME",
        "HTTP_HOST",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "SERVER_NAME",
        "SERVER_PORT",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "REQUEST_METHOD",
        "SERVER_PROTOCOL",
    ):
        assert back[key] == environ[key], key
