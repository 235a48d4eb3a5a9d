"""Request paths in PEP 3333's "bytes as latin-1" space, both ways (rules C1, C2, A7).

Theory of operation
-------------------
ASGI gives a decoded ``path`` (str) and, usually, the undecoded ``raw_path``
(bytes); WSGI wants ``SCRIPT_NAME`` and ``PATH_INFO`` as percent-decoded
*bytes* held in a latin-1 str. The two directions are mirror images and live
here side by side:

* ASGI -> WSGI (``_path_info_source``): the path is handled in the latin-1
  space from the start: ``raw_path`` is percent-decoded to bytes and decoded
  as latin-1, so ``/%FF`` survives as ``'/\\xff'`` (rule C2). ``root_path``
  goes through ``_to_latin1_space`` before it is compared with the path
  (rule C1, in ``EnvironBuilder``).
* ``raw_path`` is only trusted when it agrees with ``path``. Middleware that
  rewrites ``scope["path"]`` often leaves a stale ``raw_path`` behind; the
  agreement check costs one encode and one comparison and stops such a
  request from being routed by the old path. An ASCII path needs no
  ``raw_path`` at all, which is most requests.
* WSGI -> ASGI (``_from_latin1_space``, ``_raw_path``): the latin-1 text is
  decoded as UTF-8 for ``path`` (kept as it is when it is not UTF-8), and
  ``raw_path`` is the server's ``RAW_URI`` / ``REQUEST_URI`` when it is the
  same path, else the path percent-encoded again. ``environ_to_scope`` checks
  the common cases inline and calls ``_raw_path`` for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from ..errors import ServerProtocolError

__all__: list[str] = []

# Characters left unescaped when a raw_path is rebuilt from PATH_INFO.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
# Characters quote(..., safe=_PATH_SAFE) leaves as they are: a path made only of
# them is its own raw_path.
_UNQUOTED = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~" + _PATH_SAFE
)


def _to_latin1_space(text: str) -> str:
    """Map decoded text into PEP 3333's "bytes as latin-1" space via UTF-8."""
    if text.isascii():
        return text
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass")
    return data.decode("latin-1")


def _from_latin1_space(text: str) -> str:
    """Decode PEP 3333 "bytes as latin-1" text as UTF-8 for ASGI."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _path_info_source(scope: Mapping[str, Any]) -> str:
    """The full request path, URL-decoded, as latin-1 text (rule C2)."""
    path = scope.get("path")
    if not isinstance(path, str):
        raise ServerProtocolError(
            f"scope['path'] is {path!r}, expected a str; "
            "the server or a middleware built the scope wrongly"
        )
    if path.isascii():
        # Fast path, and most requests. An ASCII path is lossless, so raw_path
        # could only repeat it; and a raw_path that decodes to non-ASCII bytes
        # cannot be the same path (a lossy decode leaves U+FFFD, which is not
        # ASCII), so it would be stale. Either way path is the answer.
        return path
    raw = scope.get("raw_path")
    if not raw or not isinstance(raw, bytes):
        return _to_latin1_space(path)
    cut = raw.find(b"?")
    if cut >= 0:
        raw = raw[:cut]
    decoded = unquote_to_bytes(raw) if b"%" in raw else raw
    as_text = decoded.decode("latin-1")
    # Servers decode invalid UTF-8 lossily (U+FFFD) or with surrogateescape;
    # environ_to_scope keeps undecodable paths as latin-1 text. All of these
    # still describe the same path, and raw_path is the lossless one.
    if (
        as_text == _to_latin1_space(path)
        or decoded.decode("utf-8", "replace") == path
        or as_text == path
    ):
        return as_text
    # raw_path disagrees with path: a middleware rewrote path and left a stale
    # raw_path behind. path is what the ASGI stack routes on, so it wins.
    return _to_latin1_space(path)


def _raw_path(environ: Mapping[str, Any], full_path: str) -> bytes:
    """The raw request path: the server's original one if it matches, else quoted."""
    try:
        target_bytes = full_path.encode("latin-1")
    except UnicodeEncodeError:
        target_bytes = full_path.encode("utf-8", "surrogatepass")
    for key in ("RAW_URI", "REQUEST_URI"):
        uri = environ.get(key)
        if not uri or not isinstance(uri, str):
            continue
        uri = uri.partition("?")[0]
        if not uri.startswith("/"):
            # absolute-form request target, "http://host/path"
            scheme_end = uri.find("://")
            if scheme_end < 0:
                continue
            slash = uri.find("/", scheme_end + 3)
            uri = uri[slash:] if slash >= 0 else "/"
        try:
            raw = uri.encode("latin-1")
        except UnicodeEncodeError:
            continue
        # Only trust it when it is the same path (a middleware may have moved
        # SCRIPT_NAME/PATH_INFO without updating REQUEST_URI).
        if (unquote_to_bytes(raw) if b"%" in raw else raw) == target_bytes:
            return raw
    return quote(target_bytes, safe=_PATH_SAFE).encode("ascii")


def _raw_path_of(environ: Mapping[str, Any], full_path: str) -> bytes:
    """``raw_path`` for ``environ_to_scope``: the server's request target when it is this path.

    The common cases are checked first (a plain ``RAW_URI``/``REQUEST_URI``
    equal to the path, or no target at all and nothing to percent-encode);
    ``_raw_path`` handles everything else.
    """
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri.__class__ is str and uri.startswith("/"):
        cut = uri.find("?")
        target = uri[:cut] if cut >= 0 else uri
        if target == full_path and "%" not in target and full_path.isascii():
            return full_path.encode("ascii")
    if uri is None and _UNQUOTED.issuperset(full_path):
        # No request target from the server (granian sends none) and
        # nothing to percent-encode: quote() would return the path itself.
        return full_path.encode("ascii")
    return _raw_path(environ, full_path)
