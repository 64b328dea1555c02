"""Each step's cache key covers the twinsft code the step imports, and only that code.

The closure is walked here with `ast`, independently of `twinsft.runtime.code_files` (which the
steps' `code_key` hashes): every module an import statement names (function bodies included),
followed through the modules it names in turn.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT, STEPS
from twinsft import runtime

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


def missing_from_key(step: str, key_files: list[Path]) -> list[str]:
    """Modules the step imports whose source is not hashed into its cache key."""
    return sorted(name for name, path in imported_closure(f"twinsft.steps.{step}").items()
                  if path.resolve() not in {p.resolve() for p in key_files})


@pytest.mark.parametrize("step", STEPS)
def test_every_module_a_step_imports_is_in_its_cache_key(step):
    assert missing_from_key(step, runtime.code_files(f"twinsft.steps.{step}")) == []


def test_the_check_catches_a_key_that_leaves_an_imported_module_out():
    key = [p for p in runtime.code_files("twinsft.steps.split") if p.name != "formatting.py"]
    assert missing_from_key("split", key) == ["twinsft.data.formatting"]


def test_steps_import_their_own_stage_and_not_the_others():
    closure = {step: set(imported_closure(f"twinsft.steps.{step}")) for step in STEPS}
    assert "twinsft.data.formatting" in closure["split"] and "twinsft.training.fine_tune" in closure["train_sft"]
    assert not any(m.startswith("twinsft.training.fine_tune") for m in closure["split"] | closure["push_merged"])
    assert not any(m.startswith("twinsft.data.") and m != "twinsft.data.hashing" for m in closure["train_sft"])


def test_editing_a_module_changes_the_keys_of_the_steps_that_import_it_only(tmp_path, monkeypatch):
    copy = tmp_path / "twinsft"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(runtime, "PACKAGE_DIR", copy)
    before = {step: runtime.code_digest(f"twinsft.steps.{step}") for step in STEPS}
    assert before == {step: runtime.code_digest(f"twinsft.steps.{step}") for step in STEPS}  # stable

    with (copy / "data" / "formatting.py").open("a") as fh:
        fh.write("\n# an edit\n")
    after = {step: runtime.code_digest(f"twinsft.steps.{step}") for step in STEPS}
    changed = sorted(step for step in STEPS if after[step] != before[step])
    assert changed == ["format_alpaca", "split"]

    with (copy / "training" / "fine_tune.py").open("a") as fh:
        fh.write("\n# an edit\n")
    changed = sorted(step for step in STEPS if runtime.code_digest(f"twinsft.steps.{step}") != after[step])
    assert changed == ["train_sft"]


def test_the_evaluation_code_keys_smoke_generate_only():
    """Editing the evaluation (or its card) reruns smoke_generate, never training or the export."""
    closure = {step: set(imported_closure(f"twinsft.steps.{step}")) for step in STEPS}
    evaluation = {"twinsft.generation.evaluate", "twinsft.steps.evaluation_materializer"}
    assert evaluation <= closure["smoke_generate"]
    assert [step for step in STEPS if closure[step] & evaluation] == ["smoke_generate"]
