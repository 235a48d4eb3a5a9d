"""Response starts both ways: ``start_response`` arguments <-> ``http.response.start``.

Theory of operation
-------------------
Each bridge must turn the other side's response start into its own, and
refuse what would put bad bytes on the wire:

* ``encode_response_start`` (for ``WsgiToAsgi``) validates and encodes the
  ``status`` and ``headers`` a WSGI app gave to ``start_response``. Names
  must be tokens and are lowercased; values are RFC 9110 field values
  (rule C22) and latin-1 (C3); ``Content-Length`` is parsed once here, for
  the response state machine (C16). Mistakes by the application raise
  :class:`~asgibridge.errors.AppProtocolError`.
* ``encode_response_start_cached`` is its memo. Most apps send the same few
  status + header combinations again and again (validation and encoding
  cost ~2 us; a hit costs ~0.4 us), so the result is kept by
  ``(status, *headers)``. The memo is cleared when full, so one-off header
  sets (cookies, ETags) cannot keep stable ones out for long.
* ``status_line`` and ``wsgi_headers`` turn an ASGI app's
  ``http.response.start`` into ``start_response`` arguments for
  ``AsgiToWsgi``: the mirror image of ``encode_response_start``. Hop-by-hop
  headers are dropped, because PEP 3333 reserves them for the server; names
  must be tokens and values field values (rule A11), because some WSGI
  servers (waitress) write whatever they are given.
* The common path of each loop runs inline: a header name seen before costs
  one dict lookup, a plainly printable value one ``str.isprintable`` call;
  anything else goes to a helper that checks it in full or builds the error.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from ..errors import AppProtocolError
from ._fields import _CACHE_LIMIT, _TOKEN_CHARS, _has_forbidden, field_value

__all__ = [
    "encode_response_start",
    "encode_response_start_cached",
    "status_line",
    "wsgi_headers",
]

# ------------------------------------------------- WSGI start_response -> ASGI

# Encoded, lowercased response header name for each name an app has used.
_RESPONSE_NAMES: dict[str, bytes] = {}


def _parse_status(status: object) -> int:
    if not isinstance(status, str):
        raise AppProtocolError(
            f"start_response status must be a str such as '200 OK', "
            f"got {type(status).__name__} {status!r}"
        )
    code = status[:3]
    if (
        len(code) != 3
        or not (code.isdigit() and code.isascii())
        or code[0] == "0"
        or (len(status) > 3 and status[3] != " ")
        or _has_forbidden(status)
    ):
        raise AppProtocolError(
            f"start_response status {status!r} is malformed; it must be three "
            "digits (100-999), a space and a reason phrase, for example '200 OK'"
        )
    return int(code)


def _response_name(name: object) -> bytes:
    """Validate, lowercase and encode (and memoise) a response header name."""
    if not isinstance(name, str):
        raise AppProtocolError(
            f"response header name {name!r} must be a str, got {type(name).__name__}"
        )
    if not name or not all(char in _TOKEN_CHARS for char in name):
        raise AppProtocolError(
            f"response header name {name!r} is not a valid HTTP field name "
            "(letters, digits and !#$%&'*+-.^_`|~ only; no spaces, colons, CR or LF)"
        )
    encoded = name.lower().encode("latin-1")
    if len(_RESPONSE_NAMES) < _CACHE_LIMIT:
        _RESPONSE_NAMES[name] = encoded
    return encoded


def _response_value(name: object, value: object) -> str:
    """A response header value that is not a plainly printable str, checked in full (C22)."""
    if not isinstance(value, str):
        raise AppProtocolError(
            f"response header {name!r} has a {type(value).__name__} value {value!r}; "
            "WSGI header values must be str"
        )
    if value.isprintable():  # a str subclass
        return value.strip(" ")
    # A tab, a control character, or non-ASCII text.
    try:
        return field_value(value)
    except ValueError as exc:
        raise AppProtocolError(
            f"response header {name!r} value {value!r} is refused: {exc}. CR, LF and "
            "NUL would allow header injection; remove or encode the character"
        ) from None


def _not_a_list(headers: object) -> AppProtocolError:
    return AppProtocolError(
        f"start_response headers must be a list of (name, value) tuples, "
        f"got {type(headers).__name__}"
    )


def _not_a_pair(item: object) -> AppProtocolError:
    return AppProtocolError(
        f"start_response header {item!r} must be a (name, value) tuple of two str"
    )


def _not_latin1(name: object, value: str) -> AppProtocolError:
    return AppProtocolError(
        f"response header {name!r} value {value!r} cannot be encoded as "
        "latin-1; encode non-latin-1 text yourself (for example RFC 8187 "
        "or percent-encoding) before passing it to start_response"
    )


def encode_response_start(
    status: str, headers: list[tuple[str, str]]
) -> tuple[int, list[tuple[bytes, bytes]], int | None]:
    """Validate and encode the arguments a WSGI app gave to ``start_response``.

    ``status`` must be three digits (100-999) optionally followed by a space
    and a reason phrase (``"200 OK"``; ``"200"`` and ``"200 "`` are accepted).
    ``headers`` must be a list (or tuple) of ``(str, str)`` pairs. Names must
    be HTTP tokens; they are lowercased and, like values, encoded as latin-1
    (rule C3). Values lose their leading and trailing spaces and tabs, and may
    hold no control character but HTAB (rule C22). Identical repeated
    ``Content-Length`` headers are sent once.

    Returns ``(status_code, headers, content_length)``, where
    ``content_length`` is the app's ``Content-Length`` as an int, or None when
    it sent none (rule C16).

    Raises:
        AppProtocolError: a malformed status, a header that is not a pair of
            str, a value that cannot be encoded as latin-1, a name that is not
            a token, a control character other than HTAB in a value (CR, LF
            and NUL would be header injection), or a ``Content-Length`` that
            is not a decimal number or disagrees with another one.
    """
    code = _parse_status(status)
    if not isinstance(headers, (list, tuple)):
        raise _not_a_list(headers)
    names = _RESPONSE_NAMES
    encoded: list[tuple[bytes, bytes]] = []
    content_length: int | None = None
    for item in headers:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise _not_a_pair(item)
        name, value = item
        raw_name = names.get(name) if isinstance(name, str) else None
        if raw_name is None:
            raw_name = _response_name(name)
        if value.__class__ is str and value.isprintable():
            # C22: Django's Set-Cookie values start with a space. strip() returns
            # the same object when there is nothing to strip (~35 ns).
            value = value.strip(" ")
        else:
            value = _response_value(name, value)
        try:
            raw_value = value.encode("latin-1")
        except UnicodeEncodeError:
            raise _not_latin1(name, value) from None
        if raw_name == b"content-length":
            if not (value.isdigit() and value.isascii()):
                raise AppProtocolError(f"response Content-Length {value!r} is not a decimal number")
            length = int(value)
            if content_length is not None:
                if length != content_length:
                    raise AppProtocolError(
                        f"response has conflicting Content-Length headers "
                        f"({content_length} and {length})"
                    )
                continue
            content_length = length
        encoded.append((raw_name, raw_value))
    return code, encoded, content_length


# Memo of encode_response_start() results. Most apps send the same few
# status + header combinations again and again (validation and encoding
# cost ~2 us; a hit costs ~0.4 us). Cleared when full, so one-off header
# sets (cookies, ETags) cannot keep stable ones out for long.
_START_MEMO: dict[tuple[Any, ...], tuple[int, list[tuple[bytes, bytes]], int | None]] = {}
_START_MEMO_LIMIT = 256


def encode_response_start_cached(
    status: str, headers: list[tuple[str, str]]
) -> tuple[int, list[tuple[bytes, bytes]], int | None]:
    """:func:`encode_response_start`, memoised on ``(status, *headers)``.

    Same arguments, result and errors. Only a ``list`` of hashable items is
    memoised (anything else is encoded every time); each call returns a new
    header list, so the caller may change it. The memo is bounded: when full
    it is cleared, so one-off header sets cost speed, never memory.
    """
    key: tuple[Any, ...] | None = None
    hit = None
    if headers.__class__ is list:
        try:
            key = (status, *headers)
            hit = _START_MEMO.get(key)
        except TypeError:  # unhashable items (lists instead of tuples): no memo
            key = None
    if hit is not None:
        return hit[0], list(hit[1]), hit[2]
    result = encode_response_start(status, headers)
    if key is not None:
        if len(_START_MEMO) >= _START_MEMO_LIMIT:
            _START_MEMO.clear()
        _START_MEMO[key] = (result[0], list(result[1]), result[2])
    return result


# ------------------------------------------------- ASGI response -> WSGI response

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

_STATUS_LINES = {int(s): f"{int(s)} {s.phrase}" for s in HTTPStatus}

# Decoded response header name for each raw name seen; "" marks a hop-by-hop
# header that a WSGI application must not send (PEP 3333). Bounded.
_NAMES: dict[bytes, str] = {}
_NAMES_LIMIT = 512


def status_line(status: Any) -> str:
    """``200`` -> ``"200 OK"``; raises AppProtocolError for a status that is not an int."""
    line = _STATUS_LINES.get(status)
    if line is not None and status.__class__ is int:
        return line
    if status.__class__ is not int or not 100 <= status <= 999:
        raise AppProtocolError(
            f"http.response.start has status {status!r}; it must be an int from 100 to 999"
        )
    return f"{status} Unknown"


def wsgi_headers(raw: Any) -> list[tuple[str, str]]:
    """ASGI ``[(b"name", b"value"), ...]`` -> WSGI ``[("name", "value"), ...]`` (latin-1).

    Hop-by-hop headers are dropped: PEP 3333 reserves them for the server.
    Names must be RFC 9110 tokens and values field values, without their
    surrounding spaces and tabs (rules A11, C22), because some WSGI servers
    (waitress) write whatever they are given.

    Raises:
        AppProtocolError: a name that is not a token, a value with a control
            character other than HTAB, or headers that are not byte pairs.
    """
    out: list[tuple[str, str]] = []
    names = _NAMES
    try:
        for name, value in raw:
            text = names.get(name)
            if text is None:
                text = bytes(name).decode("latin-1")
                if not text or not all(char in _TOKEN_CHARS for char in text):
                    raise ValueError(
                        f"header name {bytes(name)!r} is not an RFC 9110 token (letters, "
                        "digits and !#$%&'*+-.^_`|~ only; no spaces, colons or control "
                        "characters)"
                    )
                if text.lower() in _HOP_BY_HOP:
                    text = ""
                if len(names) < _NAMES_LIMIT:
                    names[bytes(name)] = text
            if text:
                text_value = bytes(value).decode("latin-1")
                if text_value.isprintable():
                    text_value = text_value.strip(" ")
                else:
                    try:
                        text_value = field_value(text_value)
                    except ValueError as exc:
                        raise ValueError(f"the value of header {text!r}: {exc}") from None
                out.append((text, text_value))
    except (TypeError, ValueError) as exc:
        raise AppProtocolError(
            f"http.response.start has invalid headers ({exc}); headers must be an iterable "
            "of (name, value) byte-string pairs, names RFC 9110 tokens and values free of "
            "control characters"
        ) from None
    return out
