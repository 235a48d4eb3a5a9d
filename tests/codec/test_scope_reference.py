"""``environ_to_scope`` against the implementation it replaced, over varied environs (rule A7).

The scope builder was rewritten for speed (issue 14): subscripts for the keys
servers always send, and the header plan found by comparing the environ's key
list with the last one. The scope must stay exactly what it was: same keys in
the same order, same values and types, header order, latin-1 or UTF-8 bytes,
lower-casing, and CONTENT_TYPE / CONTENT_LENGTH handling. ``reference_*`` below
is the previous implementation, kept verbatim as the oracle.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from asgibridge._codec import environ_to_scope
from asgibridge._codec._fields import _CACHE_LIMIT, _latin1
from asgibridge._codec._paths import _from_latin1_space, _raw_path_of

# ---------------------------------------------------------------- the reference

_ref_HTTP_VERSIONS = {
    "HTTP/1.1": "1.1",
    "HTTP/1.0": "1.0",
    "HTTP/2": "2",
    "HTTP/2.0": "2",
}

# The keys of every scope, in order; environ_to_scope copies it and sets each value.
_ref_TEMPLATE: dict[str, Any] = dict.fromkeys(
    (
        "type",
        "asgi",
        "http_version",
        "method",
        "scheme",
        "path",
        "raw_path",
        "query_string",
        "root_path",
        "headers",
        "client",
        "server",
    )
)
_ref_TEMPLATE.update(type="http", query_string=b"", root_path="")

# ASGI header name for each HTTP_* environ key seen so far.
_ref_SCOPE_NAMES: dict[str, bytes] = {}


def _ref_scope_name(key: str) -> bytes:
    name = key[5:].replace("_", "-").lower().encode("latin-1")
    if len(_ref_SCOPE_NAMES) < _CACHE_LIMIT:
        _ref_SCOPE_NAMES[key] = name
    return name


# _ref_scope_headers: for each tuple of environ keys seen, which of them are
# headers and under which names (see _ref_header_plan). Bounded.
_ref_Pairs = tuple[tuple[str, bytes], ...]
_ref_HEADER_PLANS: dict[tuple[Any, ...], tuple[_ref_Pairs, _ref_Pairs]] = {}

# The two headers CGI names without the HTTP_ prefix, in the order they follow the others.
_ref_CGI_HEADERS = (("CONTENT_TYPE", b"content-type"), ("CONTENT_LENGTH", b"content-length"))


def _ref_header_plan(shape: tuple[Any, ...]) -> tuple[_ref_Pairs, _ref_Pairs]:
    """The (environ key, header name) pairs of the headers in ``shape``.

    First the ``HTTP_*`` keys, in order; then ``CONTENT_TYPE`` and
    ``CONTENT_LENGTH``, those of the two that are present.
    ``HTTP_CONTENT_TYPE`` / ``HTTP_CONTENT_LENGTH`` are skipped: CGI names
    those two headers without the prefix.
    """
    pairs: list[tuple[str, bytes]] = []
    for key in shape:
        if key.__class__ is not str or not key.startswith("HTTP_"):
            continue
        if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            continue
        name = _ref_SCOPE_NAMES.get(key)
        pairs.append((key, name if name is not None else _ref_scope_name(key)))
    present = set(shape)
    plan = (tuple(pairs), tuple(pair for pair in _ref_CGI_HEADERS if pair[0] in present))
    if len(_ref_HEADER_PLANS) >= _CACHE_LIMIT:
        _ref_HEADER_PLANS.clear()  # hostile key churn: start over rather than grow
    _ref_HEADER_PLANS[shape] = plan
    return plan


def _ref_scope_headers(environ: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    """``scope["headers"]``: the ``HTTP_*`` keys in environ order, then the two CGI ones."""
    # Which environ keys are headers depends only on the keys, and a server
    # sends the same key set again and again: look the plan up by the keys.
    shape = tuple(environ)
    try:
        plan, cgi = _ref_HEADER_PLANS[shape]
    except KeyError:
        plan, cgi = _ref_header_plan(shape)
    headers: list[tuple[bytes, bytes]] = []
    append = headers.append
    for key, name in plan:
        value = environ[key]
        if value.__class__ is not str and not isinstance(value, str):
            continue  # not text: a broken middleware; leave it out
        try:
            append((name, value.encode("latin-1")))
        except UnicodeEncodeError:
            append((name, value.encode("utf-8", "surrogateescape")))
    for key, name in cgi:  # CONTENT_TYPE, CONTENT_LENGTH: left out when empty
        value = environ[key]
        if value:
            append((name, _latin1(value)))
    return headers


def reference_environ_to_scope(
    environ: Mapping[str, Any],
    root_path_from_script_name: bool = True,
    extensions: dict[str, dict[str, Any]] | None = None,
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an ASGI ``http`` scope from a WSGI environ (rule A7).

    ``root_path`` is ``SCRIPT_NAME`` (``""`` with ``root_path_from_script_name=False``,
    for apps that route on the full path themselves) and ``path`` is the full
    ``SCRIPT_NAME`` + ``PATH_INFO``, both decoded from latin-1 "bytes as text" to
    UTF-8 (kept as they are when they are not valid UTF-8). ``raw_path``, ``headers``:
    see the module docstring. ``state`` is shallow-copied (the lifespan specification
    requires it per request); ``extensions`` is passed as given.
    """
    script_name = environ.get("SCRIPT_NAME") or ""
    path_info = environ.get("PATH_INFO") or ""
    full_path = script_name + path_info
    if full_path.isascii():  # most requests: nothing to decode
        decoded_script_name = script_name
        path = full_path
    else:
        decoded_script_name = _from_latin1_space(script_name)
        path = decoded_script_name + _from_latin1_space(path_info)
    scheme = environ.get("wsgi.url_scheme") or "http"
    query = environ.get("QUERY_STRING")
    remote_addr = environ.get("REMOTE_ADDR")
    client = None
    if remote_addr:
        port = environ.get("REMOTE_PORT")  # granian sends none: no KeyError to catch
        if port is None:
            client = (remote_addr, 0)
        else:
            try:
                client = (remote_addr, int(port))
            except (TypeError, ValueError):
                client = (remote_addr, 0)
    server_name = environ.get("SERVER_NAME")
    server = None
    if server_name:
        try:
            server = (server_name, int(environ["SERVER_PORT"]))
        except (KeyError, TypeError, ValueError):
            server = (server_name, 443 if scheme == "https" else 80)
    scope = _ref_TEMPLATE.copy()  # cheaper than a dict display (module docstring)
    scope["asgi"] = {"version": "3.0", "spec_version": "2.4"}
    scope["http_version"] = _ref_HTTP_VERSIONS.get(environ.get("SERVER_PROTOCOL") or "", "1.1")
    scope["method"] = environ.get("REQUEST_METHOD") or "GET"
    scope["scheme"] = scheme
    scope["path"] = path
    scope["raw_path"] = _raw_path_of(environ, full_path)
    if query:  # else the template's b""
        scope["query_string"] = (
            query.encode() if query.__class__ is str and query.isascii() else _latin1(query)
        )
    if root_path_from_script_name:
        scope["root_path"] = decoded_script_name
    scope["headers"] = _ref_scope_headers(environ)
    scope["client"] = client
    scope["server"] = server
    if extensions is not None:
        scope["extensions"] = extensions
    if state is not None:
        scope["state"] = dict(state)
    return scope


# -------------------------------------------------------------------- the tests

_TEXT = st.text(
    alphabet=st.characters(max_codepoint=0x2FF, blacklist_categories=("Cs",)), max_size=12
)
_VALUE = st.one_of(
    _TEXT,
    st.sampled_from(["", "text/html", "127.0.0.1:8000", "wrk", "caf\xe9", "\u20ac", "a\udcff"]),
    st.sampled_from([None, 5, b"bytes"]),
)
_HEADER_KEY = st.one_of(
    st.sampled_from(
        [
            "HTTP_HOST",
            "HTTP_ACCEPT",
            "HTTP_USER_AGENT",
            "HTTP_X_FORWARDED_FOR",
            "HTTP_CONTENT_TYPE",
            "HTTP_CONTENT_LENGTH",
            "HTTP_",
            "HTTP_\xc9T\xc9",
        ]
    ),
    _TEXT.map(lambda s: "HTTP_" + s.upper()),
)
_OTHER_KEY = st.sampled_from(
    [
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "REQUEST_METHOD",
        "SERVER_PROTOCOL",
        "wsgi.url_scheme",
        "SERVER_NAME",
        "SERVER_PORT",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "RAW_URI",
        "REQUEST_URI",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "PATH",
        "HOME",
        "wsgi.input",
    ]
)
_SPECIFIC = {
    "PATH_INFO": st.sampled_from(["/", "/a b", "/caf\xc3\xa9", "/\xff", "", None, "/x%2Fy"]),
    "SCRIPT_NAME": st.sampled_from(["", "/app", "/\xc3\xa9", None]),
    "SERVER_PORT": st.sampled_from(["80", "8000", "x", "", None, 443]),
    "REMOTE_PORT": st.sampled_from(["5000", "bad", None]),
    "SERVER_PROTOCOL": st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "", None, "HTTP/3"]),
    "wsgi.url_scheme": st.sampled_from(["http", "https", "", None]),
    "RAW_URI": st.sampled_from(["/", "/a%20b?x=1", "http://h/p", "*", None, "/caf%C3%A9"]),
    "REQUEST_URI": st.sampled_from(["/", "/a%20b", None, "/\xff"]),
    "QUERY_STRING": st.sampled_from(["", "a=1", "caf\xe9=1", "\u20ac", None]),
    "CONTENT_LENGTH": st.sampled_from(["", "10", None]),
    "CONTENT_TYPE": st.sampled_from(["", "text/plain", None]),
}


_SERVER_KEYS = [
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "REQUEST_METHOD",
    "SERVER_PROTOCOL",
    "wsgi.url_scheme",
    "SERVER_NAME",
    "SERVER_PORT",
]


@st.composite
def environs(draw: Any) -> dict[str, Any]:
    """Mostly the keys every server sends (sometimes one or two left out), plus others."""
    dropped = draw(st.sets(st.sampled_from(_SERVER_KEYS), max_size=2))
    extra = draw(st.lists(st.one_of(_HEADER_KEY, _OTHER_KEY), max_size=14, unique=True))
    keys = [k for k in _SERVER_KEYS if k not in dropped]
    keys += [k for k in extra if k not in keys]
    keys = draw(st.permutations(keys))
    environ: dict[str, Any] = {}
    for key in keys:
        environ[key] = draw(_SPECIFIC.get(key, _VALUE))
    return environ


def _same(environ: Mapping[str, Any], **options: Any) -> None:
    expected = reference_environ_to_scope(environ, **options)
    got = environ_to_scope(environ, **options)
    assert list(got) == list(expected)
    assert got == expected
    assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]
    for (name, value), (name2, value2) in zip(got["headers"], expected["headers"], strict=True):
        assert type(name) is type(name2) is bytes and type(value) is type(value2) is bytes


@settings(max_examples=300, deadline=None)
@given(environs(), st.booleans(), st.booleans())
def test_a7_scope_is_what_the_previous_builder_made(
    environ: dict[str, Any], root_path: bool, with_state: bool
) -> None:
    """Any environ, full or sparse, well-formed or broken: the same scope as before."""
    state = {"k": 1} if with_state else None
    extensions = {"http.response.pathsend": {}}
    try:
        expected = reference_environ_to_scope(environ, root_path, extensions, state)
    except Exception as exc:  # e.g. a non-str PATH_INFO: the same error type, both ways
        try:
            environ_to_scope(environ, root_path, extensions, state)
        except Exception as exc2:
            assert type(exc2) is type(exc)
        else:
            raise AssertionError(f"the reference raised {exc!r}, the builder did not")
        return
    got = environ_to_scope(environ, root_path, extensions, state)
    assert list(got) == list(expected)
    assert got == expected
    again = environ_to_scope(dict(environ), root_path, extensions, state)  # the memo's hit
    assert again == expected and list(again["headers"]) == list(expected["headers"])


def test_a7_scope_shapes_that_alternate_and_repeat() -> None:
    """Environs whose keys differ by one header, alternating, then shuffled: each its own plan."""
    base = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "h",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "h",
    }
    with_cookie = {**base, "HTTP_COOKIE": "a=1"}
    with_type = {**base, "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "3"}
    granian_like = {f"ENV_{i}": str(i) for i in range(40)} | base | {"HTTP_ACCEPT": "*/*"}
    rng = random.Random(14)
    for environ in [base, with_cookie, base, with_type, with_cookie, granian_like, base] * 3:
        _same(environ)
        items = list(environ.items())
        rng.shuffle(items)
        _same(dict(items))
        _same(dict(items), root_path_from_script_name=False)
