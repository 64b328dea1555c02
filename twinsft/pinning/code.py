"""The twinsft code a module runs, as files and as one digest: what a step's cache key and the training
checkpoint key hash, so editing a module reruns (or restarts) exactly what runs it.

The closure is read from the source with `ast` (nothing is imported): every twinsft module an import statement
names, function bodies included, followed through the modules those name; a package's `__init__` counts where
importing the module runs it.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # twinsft/


def _source_file(module: str) -> Path | None:
    """The file of a `twinsft.*` module or package, found without importing it; None for anything else."""
    parts = module.split(".")
    if parts[0] != PACKAGE_DIR.name:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str, path: Path) -> tuple[set[str], set[str]]:
    """What the file's `import` statements (function bodies included) name: the modules whose code it
    uses, and the packages that importing those merely runs (their `__init__`, not what it imports)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    used: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            used.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from .x import y` inside `package`
                anchor = package.split(".")[: package.count(".") + 2 - node.level]
                base = ".".join([*anchor, *([base] if base else [])])
            submodules = {f"{base}.{a.name}" for a in node.names if _source_file(f"{base}.{a.name}") is not None}
            used.update(submodules)
            if len(submodules) < len(node.names):  # a name defined (or re-exported) by `base` itself
                used.add(base)
    parents = {".".join(name.split(".")[:i]) for name in used for i in range(1, name.count(".") + 1)}
    return used, parents - used


def code_files(module: str) -> list[Path]:
    """The source files of `module`, of every twinsft module it uses directly or through others, and of the
    packages above them (whose `__init__` runs on import, though what that imports is not used)."""
    files: dict[str, Path] = {}
    pending = [module]
    parents = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    while pending:
        name = pending.pop()
        path = _source_file(name)
        if name in files or path is None:
            continue
        files[name] = path
        used, above = _imports(name, path)
        pending.extend(used)
        parents |= above
    for name in parents - files.keys():
        if (path := _source_file(name)) is not None:
            files[name] = path
    return sorted(files.values())


def code_digest(module: str) -> str:
    """sha256 of the code `module` runs from twinsft (`code_files`): a step's cache key and the checkpoint
    key include it, so editing any module a step imports reruns that step, and nothing else does."""
    h = hashlib.sha256()
    for path in code_files(module):
        h.update(str(path.relative_to(PACKAGE_DIR)).encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def code_key_of(module: str, *run_by_name: str) -> Callable[[], str]:
    """A step's cache function: the digest of the code `module` runs and of the modules it starts by name
    (`run_by_name`: a `python -m` entry point, which no import statement names). `module` must keep it as its
    own `code_key`: ZenML stores a cache function by its import path and loads it there."""

    def code_key() -> str:
        return "".join(code_digest(name) for name in (module, *run_by_name))

    code_key.__module__ = module
    return code_key
