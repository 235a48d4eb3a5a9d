"""Why a cell does not pass a scenario, when the reason is known.

Two tables, matched with shell-style patterns on
``(bridge, framework, server, scenario)``; the first match wins.

* :data:`NOT_APPLICABLE`: the framework (or server) cannot do the scenario,
  so it is not run. Shown as ``n/a`` with the reason.
* :data:`EXPLAINED`: the scenario runs, and when it fails the failure is
  shown with this reason: ``limitation`` (upstream: a framework, server or
  peer bridge, with a link) or ``bug`` (asgibridge's own, reported in
  ``/work/notes/compat_failures.md`` and fixed under the named rule). A
  failure that matches nothing here is ``fail``: unexplained, and the run
  exits non-zero. An entry that matches a passing scenario is reported as
  stale, so the tables cannot silently outlive the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

__all__ = ["EXPLAINED", "NOT_APPLICABLE", "Reason", "explain", "not_applicable"]


@dataclass(frozen=True)
class Reason:
    bridge: str
    framework: str
    server: str
    scenario: str
    kind: str  # "n/a", "limitation" or "bug"
    text: str
    link: str = ""


NA = "n/a"
LIMIT = "limitation"
BUG = "bug"

NOT_APPLICABLE = [
    Reason("*", "*", "*", "orm", NA, "only Django has an ORM in this matrix"),
    Reason("*", "falcon", "*", "session", NA, "Falcon has no session machinery"),
    Reason("*", "plain", "*", "session", NA, "a plain WSGI callable has no session machinery"),
    Reason(
        "*",
        "django-asgi",
        "*",
        "lifespan",
        NA,
        "Django's ASGIHandler does not implement the lifespan protocol",
        "https://code.djangoproject.com/ticket/31508",
    ),
    Reason(
        "a2wsgi",
        "flask|django|pyramid|bottle|falcon|plain",
        "*",
        "lifespan",
        NA,
        "a2wsgi's WSGIMiddleware has no startup hooks to set state with",
    ),
]

EXPLAINED: list[Reason] = []


def _one_of(pattern: str, value: str) -> bool:
    return any(fnmatchcase(value, p) for p in pattern.split("|"))


def _find(
    table: list[Reason], bridge: str, framework: str, server: str, scenario: str
) -> Reason | None:
    for r in table:
        if (
            _one_of(r.bridge, bridge)
            and _one_of(r.framework, framework)
            and _one_of(r.server, server)
            and _one_of(r.scenario, scenario)
        ):
            return r
    return None


def not_applicable(bridge: str, framework: str, server: str, scenario: str) -> Reason | None:
    """The reason ``scenario`` is not run in this cell, or ``None``."""
    return _find(NOT_APPLICABLE, bridge, framework, server, scenario)


def explain(bridge: str, framework: str, server: str, scenario: str) -> Reason | None:
    """The known reason this scenario fails in this cell, or ``None``."""
    return _find(EXPLAINED, bridge, framework, server, scenario)
