"""The package's dependencies run one way: no import cycle, and no module imports one of a higher
tier (:mod:`hwnorm.architecture`). Read from the source with grimp (import-linter's graph), local
imports included, so a cycle cannot hide inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

from hwnorm.architecture import ALLOWED_UPWARD, tier_of, tiers, upward_imports

PACKAGE = Path(__file__).resolve().parents[1] / "hwnorm"


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("hwnorm")


def strongly_connected(graph) -> list[list[str]]:
    """Tarjan: the import cycles (components of more than one module, or a module importing itself)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.find_modules_directly_imported_by(v):
                out.append(sorted(component))

    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    return out


def test_the_package_has_no_import_cycle(graph):
    assert strongly_connected(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    class Two:  # a → b → a
        modules = {"a", "b"}

        @staticmethod
        def find_modules_directly_imported_by(m):
            return {"a": {"b"}, "b": {"a"}}[m]
    assert strongly_connected(Two) == [["a", "b"]]


def test_every_module_has_a_tier(graph):
    assert [m for m in sorted(graph.modules) if tier_of(m) is None] == []


def test_no_module_imports_one_of_a_higher_tier(graph):
    found = upward_imports(graph)
    assert [u for u in found if (u.importer, u.imported) not in ALLOWED_UPWARD] == []
    assert len(ALLOWED_UPWARD) <= 5


def test_the_tier_check_sees_an_upward_import(graph):
    """A low module importing the flow is caught (the check is not vacuous)."""
    class Up:
        modules = set(graph.modules)

        @staticmethod
        def find_modules_directly_imported_by(m):
            return {"hwnorm.flow"} if m == "hwnorm.datatypes" else graph.find_modules_directly_imported_by(m)

        @staticmethod
        def get_import_details(importer, imported):
            if importer == "hwnorm.datatypes":
                return [{"line_number": 1, "line_contents": "from hwnorm.flow import run_flow"}]
            return graph.get_import_details(importer=importer, imported=imported)
    assert [(u.importer, u.imported) for u in upward_imports(Up)] == [("hwnorm.datatypes", "hwnorm.flow")]


def test_tiers_name_modules_that_exist(graph):
    """A tier entry that matches no module is a stale line in the table."""
    short = {m.removeprefix("hwnorm.") for m in graph.modules} | {"hwnorm"}
    for tier in tiers():
        for pattern in tier.modules:
            assert any(m == pattern or pattern.endswith(".*") and m.startswith(pattern[:-1]) for m in short), pattern


def _local_imports(path: Path) -> list[ast.ImportFrom]:
    """The ``from hwnorm… import`` statements inside functions of one file."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    return [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and id(n) not in top
            and (n.module or "").startswith("hwnorm")]


# The command line imports each command's modules when that command runs (``hwnorm --help`` and
# a mistyped option answer at once), and the console entry imports the command line after it
# has set up its signal handling; everywhere else a local import of hwnorm says why.
LAZY_BY_DESIGN = {"cli.py", "entry.py"}


def test_local_imports_of_hwnorm_say_why():
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if str(path.relative_to(PACKAGE)) in LAZY_BY_DESIGN:
            continue
        lines = path.read_text().splitlines()
        for n in _local_imports(path):
            said = lines[n.lineno - 1] + lines[n.lineno - 2]
            if "#" not in said:
                unexplained.append(f"{path.relative_to(PACKAGE)}:{n.lineno}: {lines[n.lineno - 1].strip()}")
    assert unexplained == []
