"""Each step's cache key covers the twinsft code the step imports, and only that code.

The closure is walked with `ast` (tests/import_graph.py), independently of `twinsft.pinning.code.code_files` (which
the steps' `code_key` hashes): every module an import statement names (function bodies included), followed
through the modules it names in turn.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers import STEPS
from tests.import_graph import PACKAGE, imported_closure
from twinsft.pinning import code


def missing_from_key(step: str, key_files: list[Path]) -> list[str]:
    """Modules the step imports whose source is not hashed into its cache key."""
    return sorted(name for name, path in imported_closure(f"twinsft.steps.{step}").items()
                  if path.resolve() not in {p.resolve() for p in key_files})


@pytest.mark.parametrize("step", STEPS)
def test_every_module_a_step_imports_is_in_its_cache_key(step):
    assert missing_from_key(step, code.code_files(f"twinsft.steps.{step}")) == []


def test_the_check_catches_a_key_that_leaves_an_imported_module_out():
    key = [p for p in code.code_files("twinsft.steps.split") if p.name != "formatting.py"]
    assert missing_from_key("split", key) == ["twinsft.data.formatting"]


def test_steps_import_their_own_stage_and_not_the_others():
    closure = {step: set(imported_closure(f"twinsft.steps.{step}")) for step in STEPS}
    assert "twinsft.data.formatting" in closure["split"] and "twinsft.training.fine_tune" in closure["train_sft"]
    assert not any(m.startswith("twinsft.training.fine_tune") for m in closure["split"] | closure["push_merged"])
    # Training reads the rows' content hash and the Alpaca template from the data stage, none of its readers.
    shared = {"twinsft.data.hashing", "twinsft.data.alpaca"}
    assert {m for m in closure["train_sft"] if m.startswith("twinsft.data.")} == shared


def test_editing_a_module_changes_the_keys_of_the_steps_that_import_it_only(tmp_path, monkeypatch):
    copy = tmp_path / "twinsft"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code, "PACKAGE_DIR", copy)
    before = {step: code.code_digest(f"twinsft.steps.{step}") for step in STEPS}
    assert before == {step: code.code_digest(f"twinsft.steps.{step}") for step in STEPS}  # stable

    with (copy / "data" / "formatting.py").open("a") as fh:
        fh.write("\n# an edit\n")
    after = {step: code.code_digest(f"twinsft.steps.{step}") for step in STEPS}
    changed = sorted(step for step in STEPS if after[step] != before[step])
    assert changed == ["format_alpaca", "split"]

    with (copy / "training" / "fine_tune.py").open("a") as fh:
        fh.write("\n# an edit\n")
    changed = sorted(step for step in STEPS if code.code_digest(f"twinsft.steps.{step}") != after[step])
    assert changed == ["train_sft"]


def test_the_evaluation_code_keys_smoke_generate_only():
    """Editing the evaluation (or its card) reruns smoke_generate, never training or the export (promote reads
    the evaluation too, and is never cached)."""
    closure = {step: set(imported_closure(f"twinsft.steps.{step}")) for step in STEPS}
    evaluation = {"twinsft.generation.evaluate", "twinsft.steps.evaluation_materializer"}
    assert evaluation <= closure["smoke_generate"]
    assert [step for step in STEPS if closure[step] & evaluation] == ["smoke_generate", "promote"]
