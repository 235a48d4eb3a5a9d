"""The package's layout is its architecture: these tests keep the picture true.

* Every top-level name of ``asgibridge`` belongs to one layer, and imports
  only go down the layers (or sideways inside one folder).
* A folder is entered only through its ``__init__.py``: no module imports
  another folder's private modules, so each folder can be re-cut freely.
* The two wings (``_wsgi``, ``_asgi``) never import each other, and neither
  do the pure codecs and the scheduler core.
* No module is over 400 lines, and no function over about 60.

``docs/architecture.md`` draws the same layers; change both together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGE = ROOT / "asgibridge"

#: Layer of each top-level module or folder of the package: imports go to the
#: same or a lower layer only.
LAYERS: dict[str, int] = {
    # 0: the vocabulary
    "errors": 0,
    "_types": 0,
    # 1: the pure codecs, the scheduler core, app detection
    "_codec": 1,
    "_core": 1,
    "_interface": 1,
    # 2: the wings
    "_wsgi": 2,
    "_asgi": 2,
    # 3: the public adapters
    "wsgi": 3,
    "asgi": 3,
    "sync": 3,
    "loop": 3,
    # 4: the integrations on top, and their internals
    "dispatch": 4,
    "_mount": 4,
    "django": 4,
    "_django": 4,
    "cli": 4,
    "_serve": 4,
    "__main__": 4,
    "__init__": 4,
}

#: Pairs of the same layer that must not know each other.
APART = [{"_wsgi", "_asgi"}, {"_codec", "_core"}, {"_codec", "_interface"}]

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 65


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _unit(path: Path) -> str:
    """The top-level module or folder ``path`` belongs to (``_core``, ``wsgi``, ...)."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imports(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """(line, absolute dotted parts below ``asgibridge``) of every package import in ``text``."""
    package = list(path.relative_to(ROOT).with_suffix("").parts)[:-1]
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "asgibridge":
                target = node.module.split(".")
            else:
                continue
            if not node.module:  # from . import x: x may be a module
                for alias in node.names:
                    found.append((node.lineno, [*target[1:], alias.name]))
            else:
                found.append((node.lineno, target[1:]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "asgibridge":
                    found.append((node.lineno, parts[1:]))
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_the_layers_and_through_front_doors(path: Path) -> None:
    problems = _import_problems(path, path.read_text())
    assert not problems, "\n".join(problems)


def _import_problems(path: Path, text: str) -> list[str]:
    unit = _unit(path)
    assert unit in LAYERS, f"{unit} has no layer: add it to LAYERS and to docs/architecture.md"
    problems = []
    for line, target in _imports(path, text):
        if not target:
            continue
        other = target[0]
        if other == unit:
            continue
        if other not in LAYERS:
            continue  # a name re-exported by asgibridge/__init__.py
        if LAYERS[other] > LAYERS[unit]:
            problems.append(
                f"line {line}: {unit} (layer {LAYERS[unit]}) imports {other} "
                f"(layer {LAYERS[other]}), which is above it"
            )
        if {unit, other} in APART:
            problems.append(f"line {line}: {unit} imports {other}; they must stay apart")
        if (PACKAGE / other).is_dir() and len(target) > 1 and target[1].startswith("_"):
            problems.append(
                f"line {line}: {unit} reaches into {'.'.join(target)}; "
                f"import from {other}'s __init__.py instead"
            )
    return problems


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text()
    lines = text.count("\n")
    assert lines <= MAX_MODULE_LINES, f"{lines} lines: split the module by concern"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_every_top_level_unit_has_a_layer() -> None:
    units = {_unit(p) for p in _modules()}
    assert units == set(LAYERS), (
        f"not in LAYERS: {sorted(units - set(LAYERS))}; gone: {sorted(set(LAYERS) - units)}"
    )


def test_the_checker_sees_a_bad_import() -> None:
    """The import rule can fail: a wing module reaching into the core and up to an adapter."""
    probe = PACKAGE / "_wsgi" / "_probe.py"
    text = "from .._core._jobs import Job\n\n\ndef f():\n    from ..wsgi import WsgiToAsgi\n"
    problems = "\n".join(_import_problems(probe, text))
    assert "line 1: _wsgi reaches into _core._jobs" in problems
    assert "line 5: _wsgi (layer 2) imports wsgi (layer 3), which is above it" in problems
    asgi = "from .._asgi import Exchange\n"
    assert "must stay apart" in "\n".join(_import_problems(probe, asgi))
