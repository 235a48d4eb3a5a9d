"""Header fields and PEP 3333 text, shared by both directions of the codecs.

Theory of operation
-------------------
Both bridges translate the same kinds of value, only in opposite directions,
so the character rules live here once:

* A header *name* must be an RFC 9110 token (``_TOKEN_CHARS``). A request
  name that is not one never becomes a CGI key (rule C5); a response name that
  is not one is the application's error (rules C3, A11).
* A header *value* must be an RFC 9110 field value: no control character but
  HTAB, and no surrounding SP/HTAB (:func:`field_value`, rule C22). The
  callers take a fast path first: a ``str.isprintable()`` value holds no
  control character, so only the rare value that is not plainly printable
  pays for the regular expression. CR, LF and NUL (``_has_forbidden``) are the
  three that would allow header injection and are refused everywhere.
* PEP 3333 carries bytes as latin-1 text. ``_latin1`` turns such text back
  into bytes and never raises: text that is not latin-1 (a broken server) is
  encoded as UTF-8 instead, because a request must not fail on a decoding
  detail the app can still see. (Paths, which need more care, are in
  ``_paths``.)
* Memo tables in the codecs stop growing at ``_CACHE_LIMIT`` entries: past it
  new entries are computed and not stored (or the table is cleared), so
  hostile input costs speed, never memory.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["field_value"]

# Upper bound for each memo table. Past it, new entries are computed and not
# stored, so hostile input costs speed, never memory.
_CACHE_LIMIT = 512

# RFC 9110 "token" characters, allowed in a header name.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _has_forbidden(text: str) -> bool:
    """True when text holds CR, LF or NUL, which must never reach a header."""
    return "\r" in text or "\n" in text or "\0" in text


# A control character that an RFC 9110 field value may not hold: every C0
# character except HTAB, and DEL (rule C22). Bytes 0x80-0xFF are obs-text,
# which the RFC still allows.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def field_value(value: str) -> str:
    """An RFC 9110 field value: ``value`` without surrounding SP/HTAB (rule C22).

    Raises ValueError, naming the character, when ``value`` holds a control
    character other than HTAB (CR, LF, NUL, ``\\x0b``, DEL, ...).

    Callers take a fast path first: a ``str.isprintable()`` value holds no
    control character and no HTAB, so it only needs its spaces stripped.
    """
    bad = _CONTROL.search(value)
    if bad is not None:
        raise ValueError(
            f"control character {bad.group()!r} at offset {bad.start()}; a header value may "
            "hold no control character other than tab (RFC 9110 section 5.5)"
        )
    return value.strip(" \t")


def _latin1(text: Any) -> bytes:
    """PEP 3333 text as bytes; text that is not latin-1 (a broken server) never raises."""
    try:
        return bytes(text.encode("latin-1"))
    except UnicodeEncodeError:
        return bytes(text.encode("utf-8", "surrogatepass"))
    except AttributeError:
        return str(text).encode("utf-8", "surrogatepass")
