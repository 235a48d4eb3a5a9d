"""Generate ``docs/conformance.md``: every conformance rule, its source, and the tests that prove it.

The rule table below is the project's own statement of the rules (C* for
``WsgiToAsgi``, A* for ``AsgiToWsgi``, U* for ``sync_to_async`` /
``async_to_sync``). The tests are not listed by hand: they are found by an
AST scan of ``tests/**/test_*.py`` (every folder below ``tests/``) for functions whose
names start with one or more rule ids, for example ``test_c5_...`` or ``test_c2_c3_...``;
each test is listed by its path relative to ``tests/``. So the page
cannot drift from the suite; ``tests/test_conformance_doc.py`` regenerates it
and fails when the committed page differs or when a rule has no test.

Usage::

    python scripts/gen_conformance.py           # rewrite docs/conformance.md
    python scripts/gen_conformance.py --check   # exit 1 if it is stale or a rule has no test
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
OUTPUT = ROOT / "docs" / "conformance.md"

PEP3333 = "PEP 3333"
WWW = "ASGI `specs/www.rst`"
LIFESPAN = "ASGI `specs/lifespan.rst`"

# (rule id, what the bridge promises, where the rule comes from)
RULES: tuple[tuple[str, str, str], ...] = (
    # -- WsgiToAsgi: a WSGI app on an ASGI server
    (
        "C1",
        "`SCRIPT_NAME` is the scope's `root_path`; `PATH_INFO` is `path` without that prefix. "
        "A `path` outside `root_path` has a documented, tested outcome.",
        f"{WWW}, WSGI compatibility",
    ),
    (
        "C2",
        "`PATH_INFO` carries the percent-decoded request bytes as latin-1, taken from "
        "`raw_path` when the server gives one: `/%FF` becomes `'/\\xff'`.",
        f"{PEP3333}, Unicode issues; {WWW}",
    ),
    (
        "C3",
        "Headers are bytes on the ASGI side and latin-1 strings on the WSGI side; response "
        "values are encoded as latin-1 and names are lowercased for ASGI.",
        f"{PEP3333}, string types; {WWW}",
    ),
    (
        "C4",
        'Repeated request headers are joined with `", "`, except `Cookie`, joined with `"; "`.',
        "RFC 9110 §5.3; RFC 9113 §8.2.3",
    ),
    (
        "C5",
        "A request header name with `_`, or that is not an ASCII token, never becomes a CGI "
        "key, so a client cannot spoof a header a proxy set.",
        "daphne, nginx and gunicorn practice (CVE-2015-0219)",
    ),
    (
        "C6",
        "`CONTENT_TYPE` / `CONTENT_LENGTH` have no `HTTP_` prefix, no `HTTP_CONTENT_*` key "
        "exists, every CGI value is a `str`, and `wsgiref.validate` passes.",
        f"{PEP3333}, environ variables",
    ),
    (
        "C7",
        "`start_response` sends nothing before the first non-empty chunk, the end, or "
        "`write()`; `exc_info` replaces headers before that and re-raises after; a second "
        "call without it is an error.",
        f"{PEP3333}, start_response and error handling",
    ),
    (
        "C8",
        "`start_response` returns a `write(bytes)` whose data is sent before it returns.",
        f"{PEP3333}, the write() callable",
    ),
    (
        "C9",
        "`close()` on the app's iterable runs on every path: normal end, error, disconnect, "
        "and an early stop at Content-Length.",
        f"{PEP3333}, specification details",
    ),
    (
        "C10",
        "`wsgi.input` supports the whole PEP 3333 read API, ends with `b''`, never reads past "
        "`CONTENT_LENGTH`, and streams: memory stays flat for a huge upload.",
        f"{PEP3333}, input and error streams",
    ),
    (
        "C11",
        "A client that leaves mid-upload makes the app's read raise; the app never sees a "
        "silently short body.",
        f"{WWW}, disconnect event",
    ),
    ("C12", "`wsgi.errors` is a text stream for error logs, never stdout.", PEP3333),
    (
        "C13",
        "Backpressure: a bounded number of response chunks sit between app and client.",
        f"{PEP3333}, buffering and streaming; {WWW}",
    ),
    (
        "C14",
        "When `send()` raises or the client leaves, the app's iterator stops, `close()` runs, "
        "the worker is freed, and nothing hangs or leaks.",
        f"{WWW}, disconnected client; ASGI `specs/asgi.rst`, error handling",
    ),
    (
        "C15",
        "Clients that stall mid-upload cannot starve the worker pool: a plain GET is still "
        "answered.",
        "availability",
    ),
    (
        "C16",
        "Never more bytes than the app's Content-Length; fewer is logged and the response "
        "aborted, never a hang.",
        f"{PEP3333}, the Content-Length header",
    ),
    (
        "C17",
        "Lifespan startup and shutdown are answered (with optional hooks); a websocket scope is "
        "refused with a close.",
        LIFESPAN,
    ),
    (
        "C18",
        "Context variables set by the ASGI stack are visible in the WSGI app.",
        "asgiref and a2wsgi practice",
    ),
    (
        "C19",
        "`wsgi.file_wrapper` exists, and file responses use `http.response.pathsend` or "
        "`zerocopysend` when the server offers them.",
        f"{PEP3333}, platform-specific file handling; ASGI `docs/extensions.rst`",
    ),
    (
        "C20",
        "An empty iterable still gives exactly one response start and one final body.",
        "ASGI message order",
    ),
    (
        "C21",
        "The number of request headers, and of repeats of one name, is bounded; beyond it the "
        "answer is 400.",
        "CVE-2025-14550 (asgiref)",
    ),
    (
        "C22",
        "Response header values are RFC 9110 field values: surrounding whitespace is stripped, "
        "and any control character but HTAB gives a 500 before anything is sent.",
        "RFC 9110 §5.5",
    ),
    # -- AsgiToWsgi: an ASGI app on a WSGI server
    (
        "A1",
        "Lifespan startup runs before the first request, on the loop that runs every request; "
        "shutdown at exit or on close; a failed startup is loud.",
        LIFESPAN,
    ),
    (
        "A2",
        "The loop and its thread start lazily and start afresh in a forked child (pre-fork "
        "servers, `--preload`).",
        "a2wsgi issues #34, #81",
    ),
    (
        "A3",
        "A chunked request body (no `CONTENT_LENGTH`, `wsgi.input_terminated`) reaches the app "
        "whole.",
        "gunicorn and waitress convention",
    ),
    (
        "A4",
        "When the WSGI server closes the response early, the ASGI task is cancelled and its "
        "`finally` blocks run.",
        f"{PEP3333} close(); ASGI `specs/asgi.rst`",
    ),
    (
        "A5",
        "After the whole body, `receive()` waits until the response is done or the client "
        "leaves, then returns `http.disconnect`.",
        f"{WWW}; a2wsgi #45, #58",
    ),
    (
        "A6",
        "App exceptions are logged with a traceback; after the response started they abort it.",
        "a2wsgi #3, #77",
    ),
    (
        "A7",
        "The scope is complete and correct: versions, `raw_path`, `root_path`, `path`, "
        "`client`, `server`, `scheme`, `http_version`, lowercase latin-1 header names.",
        WWW,
    ),
    (
        "A8",
        "Backpressure: a bounded number of response messages are buffered; a slow consumer "
        "slows the app's `send()`.",
        WWW,
    ),
    (
        "A9",
        "Background work after the response completes by default; an optional bound cancels "
        "and logs it.",
        "Starlette BackgroundTasks practice",
    ),
    (
        "A10",
        "`http.response.pathsend` is advertised and served through `wsgi.file_wrapper`; "
        "trailers are not advertised.",
        "ASGI `docs/extensions.rst`",
    ),
    (
        "A11",
        "Response header names from the ASGI app are RFC 9110 tokens and values are field "
        "values; anything else is a 500 and a log line, never bytes on the wire.",
        "RFC 9110 §5.1",
    ),
    (
        "A12",
        "Lifespan `auto`: an app that raises or answers with a non-lifespan message on the "
        "lifespan scope runs without lifespan, and a silent startup is not fatal; "
        "`lifespan.startup.failed` stays fatal.",
        f"{LIFESPAN}",
    ),
    (
        "A13",
        "`CONTENT_LENGTH` must be ASCII digits only; anything else is answered 400.",
        "RFC 9110 §8.6",
    ),
    (
        "A14",
        "Never more response body than the app's `Content-Length`: the excess is cut and "
        "logged once, because some WSGI servers (wsgiref) write whatever they are given.",
        'PEP 3333, "Handling the Content-Length header"',
    ),
    # -- sync_to_async / async_to_sync
    (
        "U1",
        "asgiref's names and signatures, usable as decorators and on methods, keeping "
        "`functools.wraps` metadata.",
        "asgiref 3.13 `asgiref.sync`",
    ),
    (
        "U2",
        "Thread-sensitive calls run on one thread: the outermost sync thread, else one per "
        "`ThreadSensitiveContext`.",
        "asgiref 3.13 `asgiref.sync`",
    ),
    (
        "U3",
        "Context variable changes made in the wrapped call are visible to the caller.",
        "asgiref 3.13 `asgiref.sync`",
    ),
    (
        "U4",
        "`async_to_sync` on a thread running a loop raises a clear `RuntimeError`; nesting "
        "works and reuses the outer loop.",
        "asgiref 3.13 `asgiref.sync`",
    ),
    (
        "U5",
        "Exceptions propagate with tracebacks; a cancelled caller's sync function finishes in "
        "its thread and the cancellation reaches the caller.",
        "asgiref 3.13 `asgiref.sync`",
    ),
    (
        "U6",
        "In greenlet mode, `async_to_sync` inside a bridge greenlet switches back to the loop "
        "with no thread; elsewhere it falls back or errors, never hangs.",
        "asgibridge greenlet executor",
    ),
    (
        "U7",
        "Sync code run by any bridge worker sees no running event loop, as under asgiref; the "
        "loop is visible again back in async code.",
        "asgiref practice; Django `async_unsafe`",
    ),
    (
        "U8",
        "`asgiref.local.Local` values set on one side of a hop are seen on the other, both "
        "ways, thread-critical or not.",
        "asgiref 3.13 `asgiref.local`",
    ),
    (
        "U9",
        "After a fork the child never touches the parent's loops or descriptors, whichever "
        "thread forked, and both processes keep working.",
        "POSIX fork; pre-fork servers",
    ),
    (
        "U10",
        "Cancellation through a nested `async_to_sync` reaches the nested task and waits for "
        "it; no borrowed thread outlives its request.",
        "asgiref 3.13 `asgiref.sync`",
    ),
)

SECTIONS = (
    ("C", "WSGI app on an ASGI server (WsgiToAsgi)"),
    ("A", "ASGI app on a WSGI server (AsgiToWsgi)"),
    ("U", "sync_to_async / async_to_sync"),
)

_RULE_TOKEN = re.compile(r"([cau])(\d+)$")


def rules_of(test_name: str) -> list[str]:
    """The rule ids a test name starts with: ``test_c2_c3_x`` gives ``["C2", "C3"]``."""
    parts = test_name.split("_")[1:]
    found: list[str] = []
    for part in parts:
        m = _RULE_TOKEN.match(part)
        if not m:
            break
        found.append(f"{m.group(1).upper()}{int(m.group(2))}")
    return found


def collect_tests(tests_dir: Path = TESTS) -> dict[str, list[str]]:
    """Map each rule id to ``path::[Class::]test`` ids, by an AST scan of ``tests/**/test_*.py``.

    ``path`` is relative to ``tests_dir`` (``test_x.py``, ``wsgi/test_y.py``); files are read
    in the order of those paths.
    """
    found: dict[str, list[str]] = {}
    paths = {p.relative_to(tests_dir).as_posix(): p for p in tests_dir.rglob("test_*.py")}
    for name, path in sorted(paths.items()):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, prefix in _test_functions(tree):
            for rule in rules_of(node.name):
                found.setdefault(rule, []).append(f"{name}::{prefix}{node.name}")
    return found


def _test_functions(
    tree: ast.Module,
) -> list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    out: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith(
            "test_"
        ):
            out.append((node, ""))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and sub.name.startswith(
                    "test_"
                ):
                    out.append((sub, f"{node.name}::"))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(tests: dict[str, list[str]]) -> str:
    """The Markdown page for ``tests`` (as returned by :func:`collect_tests`)."""
    lines = [
        "# Conformance",
        "",
        "<!-- Generated by scripts/gen_conformance.py from the rule table in that script and the",
        "     test names in tests/. Do not edit by hand: run `python scripts/gen_conformance.py`. -->",
        "",
        "Every rule the bridges and the sync utilities follow, where it comes from, and the tests",
        "that prove it. A test proves rule C5 when its name starts with `test_c5_`; a name such as",
        "`test_c2_c3_...` counts for both rules. `tests/test_conformance_doc.py` fails when this",
        "page is out of date or when a rule has no test.",
        "",
        "Sources: PEP 3333 (WSGI); the ASGI specification (`specs/www.rst`, `specs/lifespan.rst`,",
        "`specs/asgi.rst` and `docs/extensions.rst` in the django/asgiref repository); RFC 9110.",
        "",
    ]
    known = {rule for rule, _, _ in RULES}
    for letter, title in SECTIONS:
        lines += [
            f"## {title}",
            "",
            "| rule | what is promised | source | tests |",
            "|---|---|---|---|",
        ]
        for rule, text, source in RULES:
            if not rule.startswith(letter):
                continue
            names = tests.get(rule, [])
            cell = "<br>".join(f"`{n}`" for n in names) if names else "**none**"
            lines.append(f"| {rule} | {_cell(text)} | {_cell(source)} | {cell} |")
        lines.append("")
    unknown = sorted(set(tests) - known)
    if unknown:
        lines += [
            "## Test names that cite no known rule",
            "",
            *(f"- {rule}: " + ", ".join(f"`{n}`" for n in tests[rule]) for rule in unknown),
            "",
        ]
    total = sum(len(v) for k, v in tests.items() if k in known)
    lines += [f"{len(known)} rules, {total} rule-named tests.", ""]
    return "\n".join(lines)


def untested(tests: dict[str, list[str]]) -> list[str]:
    """Rule ids that no test name cites."""
    return [rule for rule, _, _ in RULES if not tests.get(rule)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the page is stale")
    args = parser.parse_args(argv)
    tests = collect_tests()
    page = render(tests)
    if args.check:
        problems = []
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != page:
            problems.append(f"{OUTPUT.relative_to(ROOT)} is stale: run scripts/gen_conformance.py")
        missing = untested(tests)
        if missing:
            problems.append("rules with no test: " + ", ".join(missing))
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    OUTPUT.write_text(page, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}; untested: {', '.join(untested(tests)) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
