"""The import graph of the `twinsft` package, read with `ast` from the source files (nothing is imported):
which twinsft modules each file's import statements name, at any depth of the file (function bodies and
`TYPE_CHECKING` blocks included). The cache-key test and the import-order test walk it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "twinsft"


def module_file(name: str) -> Path | None:
    if name != "twinsft" and not name.startswith("twinsft."):
        return None
    base = PACKAGE.joinpath(*name.split(".")[1:])
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


class ImportNames(ast.NodeVisitor):
    """The twinsft modules one file's import statements name, at any depth of the file."""

    def __init__(self, module: str, path: Path):
        self.package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        self.names: list[str] = []

    def visit_Import(self, node: ast.Import) -> None:
        self.names.extend(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        origin = node.module or ""
        if node.level:  # relative to this file's package
            up = self.package.split(".")[: self.package.count(".") + 2 - node.level]
            origin = ".".join([*up, origin]) if origin else ".".join(up)
        for alias in node.names:
            # `from package import submodule` names the submodule; any other name is defined in `origin`.
            self.names.append(f"{origin}.{alias.name}" if module_file(f"{origin}.{alias.name}") else origin)


def imported_closure(module: str) -> dict[str, Path]:
    """twinsft modules `module` imports, directly or through the modules it imports."""
    found: dict[str, Path] = {}
    frontier = {module}
    while frontier:
        name = frontier.pop()
        path = module_file(name)
        if path is not None and name not in found:
            found[name] = path
            visitor = ImportNames(name, path)
            visitor.visit(ast.parse(path.read_text()))
            frontier.update(visitor.names)
    return found


def all_modules() -> dict[str, Path]:
    """Every module and package of twinsft, by dotted name."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def direct_imports(module: str, path: Path) -> set[str]:
    """The twinsft modules `module`'s own import statements name."""
    visitor = ImportNames(module, path)
    visitor.visit(ast.parse(path.read_text()))
    return {name for name in visitor.names if module_file(name) is not None}
