"""The package follows the data: a package imports only from packages upstream of it in the
flow (README, "Layout"), read from the source's import statements."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "crmlake"
# Upstream first. core and catalog are the ground floor every package may import.
FLOW = ["core", "catalog", "contracts", "landing", "bronze", "silver", "gold", "models", "publish", "privacy", "synth"]
GROUND = {"core", "catalog"}


def imports_between_packages() -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> the modules whose statements make that arrow."""
    arrows: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2:
            continue  # crmlake/__init__.py, __main__.py: the package's own entry
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                dotted = name.split(".")
                if dotted[0] == "crmlake" and len(dotted) > 1 and dotted[1] != parts[0]:
                    arrows.setdefault((parts[0], dotted[1]), []).append(str(path.relative_to(PACKAGE)))
    return arrows


def test_every_package_is_in_the_flow():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"reports"} == set(FLOW)  # reports: an empty room so far


def test_no_import_runs_back_up_the_flow():
    arrows = imports_between_packages()
    assert arrows, "no imports between packages found: the scan reads nothing"
    against = {
        arrow: sorted(set(modules))
        for arrow, modules in arrows.items()
        if arrow[1] not in GROUND and FLOW.index(arrow[1]) > FLOW.index(arrow[0])
    }
    assert against == {}


def test_core_imports_nothing_else_of_crmlake():
    assert {arrow: modules for arrow, modules in imports_between_packages().items() if arrow[0] == "core"} == {}


def test_the_catalog_imports_core_alone():
    """The ground floor: every package may import the catalog, so it imports nothing but core (an
    entity's bronze and silver tables are registered with it by the contracts)."""
    assert {arrow for arrow in imports_between_packages() if arrow[0] == "catalog"} == {("catalog", "core")}
