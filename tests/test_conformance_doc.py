"""docs/conformance.md is generated from the rule table and the test names; keep it honest.

The page is rebuilt in memory by ``scripts/gen_conformance.py`` and compared
with the committed file, so a test renamed, added or removed without
regenerating the page fails here. A rule that no test name cites fails too:
every rule must be proved by at least one ``test_<rule>_...`` test.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support import ROOT


def _generator() -> ModuleType:
    path = ROOT / "scripts" / "gen_conformance.py"
    spec = importlib.util.spec_from_file_location("gen_conformance", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_conformance", module)
    spec.loader.exec_module(module)
    return module


gen = _generator()


def test_conformance_page_is_current() -> None:
    page = gen.render(gen.collect_tests())
    committed = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    assert committed == page, (
        "docs/conformance.md is stale: run `python scripts/gen_conformance.py` and commit it"
    )


def test_every_rule_has_a_test() -> None:
    missing = gen.untested(gen.collect_tests())
    assert not missing, (
        f"rules with no test named after them: {', '.join(missing)}; "
        "add a test_<rule>_... test that proves each"
    )


def test_every_rule_in_the_shared_list_is_in_the_table() -> None:
    """The generator's table names each rule once, in order C*, A*, U* (A14 is ours: the
    shared list stops at A13)."""
    ids = [rule for rule, _, _ in gen.RULES]
    assert len(ids) == len(set(ids))
    for letter, count in (("C", 22), ("A", 14), ("U", 10)):
        assert [r for r in ids if r[0] == letter] == [f"{letter}{i}" for i in range(1, count + 1)]


@pytest.mark.parametrize(
    ("name", "rules"),
    [
        pytest.param("test_c5_drops_underscores", ["C5"], id="one"),
        pytest.param("test_c2_c3_latin1", ["C2", "C3"], id="two"),
        pytest.param("test_a12_x", ["A12"], id="two-digit"),
        pytest.param("test_u10", ["U10"], id="bare"),
        pytest.param("test_client_gone", [], id="not-a-rule"),
        pytest.param("test_50_requests", [], id="number-only"),
    ],
)
def test_rule_ids_are_read_from_test_names(name: str, rules: list[str]) -> None:
    assert gen.rules_of(name) == rules


def test_a_test_without_a_rule_is_reported(tmp_path: Path) -> None:
    """collect_tests finds module-level and class tests; untested() sees the gaps."""
    (tmp_path / "test_x.py").write_text(
        "def test_c1_a(): pass\n"
        "class TestY:\n    async def test_a2_b(self): pass\n"
        "def helper_c3(): pass\n"
    )
    found = gen.collect_tests(tmp_path)
    assert found == {"C1": ["test_x.py::test_c1_a"], "A2": ["test_x.py::TestY::test_a2_b"]}
    assert "C3" in gen.untested(found)
