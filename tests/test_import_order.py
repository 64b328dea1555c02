"""The import order of the `twinsft` package, as the README's Layout states it: modules import only downward in

    cli -> server -> pipelines -> steps -> promotion -> checks -> serving -> export -> generation -> training
    -> pinning -> data -> shared modules

with no import circle among twinsft modules (function bodies included: an import inside a function is still an
import), and no private name (`_x`) imported from another module. `materializers` and `visuals` are the old
import paths of the materializers, kept for artifacts of earlier runs: only ZenML imports them.
"""

from __future__ import annotations

import ast

import pytest

from tests.import_graph import all_modules, direct_imports

# Highest first: a module may import its own package and those below it, never one above.
ORDER = ("cli", "server", "pipelines", "steps", "promotion", "checks", "serving", "export", "generation", "training",
         "pinning", "data")
OLD_IMPORT_PATHS = ("twinsft.materializers", "twinsft.visuals")


def layer(module: str) -> int:
    """The module's rank in ORDER (0 is the top); the shared top-level modules come after every package."""
    if module in OLD_IMPORT_PATHS:
        return -1
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in ORDER):
        return ORDER.index(parts[1])
    return len(ORDER)  # twinsft itself and its top-level modules


def graph() -> dict[str, set[str]]:
    return {name: direct_imports(name, path) - {name} for name, path in all_modules().items()}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} imports {b}" for a, targets in edges.items() for b in targets
                  if b in OLD_IMPORT_PATHS or layer(b) < layer(a))


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def private_imports() -> list[str]:
    """`from twinsft.x import _y` anywhere in twinsft."""
    found = []
    for name, path in all_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("twinsft"):
                found += [f"{name} imports {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


def test_no_module_imports_upward():
    assert upward_imports(graph()) == []


def test_no_import_circle_among_twinsft_modules():
    assert circles(graph()) == []


def test_no_private_name_is_imported_from_another_module():
    assert private_imports() == []


def test_every_package_has_a_place_in_the_order():
    packages = {name.split(".")[1] for name, path in all_modules().items()
                if name.count(".") >= 1 and path.name == "__init__.py"}
    assert packages <= set(ORDER)


@pytest.mark.parametrize(("planted", "expected"), [
    ({"twinsft.training.fit": {"twinsft.cli.main"}}, "twinsft.training.fit imports twinsft.cli.main"),
    ({"twinsft.data.mix": {"twinsft.pinning.data"}}, "twinsft.data.mix imports twinsft.pinning.data"),
    ({"twinsft.config": {"twinsft.steps.split"}}, "twinsft.config imports twinsft.steps.split"),
])
def test_the_check_fails_on_a_planted_upward_import(planted, expected):
    edges = graph()
    for source, targets in planted.items():
        edges.setdefault(source, set()).update(targets)
    assert expected in upward_imports(edges)


def test_the_check_fails_on_a_planted_circle():
    edges = graph()
    edges["twinsft.storage"] = edges.get("twinsft.storage", set()) | {"twinsft.models"}  # models imports storage
    assert ["twinsft.models", "twinsft.storage"] in circles(edges)
