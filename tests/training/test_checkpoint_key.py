"""The checkpoint key hashes the training body's code, not the launcher's or the ranks' code around it.

Each test edits a copy of the twinsft package (pinning.code.PACKAGE_DIR pointed at it), as a developer would edit
the checkout between a crashed run and its rerun.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest

from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.pinning import code
from twinsft.training import resume

PACKAGE = code.PACKAGE_DIR
STEP = importlib.import_module("twinsft.steps.train_sft")  # the package's `train_sft` is the step itself
# Where the launcher and the ranks talk and log: none of it decides a weight.
AROUND_THE_BODY = ("rank.py", "handoff.py", "launch.py")


@pytest.fixture
def package(tmp_path, monkeypatch) -> Path:
    copy = tmp_path / "twinsft"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code, "PACKAGE_DIR", copy)
    return copy


def checkpoint_key() -> str:
    """The key of one fixed run (the rows' hashes stand in for the rows)."""
    return resume.run_key("train-rows", "eval-rows", ModelSpec(), LoraSpec(), TrainingSpec(), world_size=2)


def append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def test_changing_only_rank_logging_code_leaves_the_checkpoint_key_of_a_run_unchanged(package):
    before, step_before = checkpoint_key(), STEP.code_key()
    append(package / "training" / "rank.py", '\nlogging.getLogger(__name__).info("rank %d is here", 0)\n')
    append(package / "training" / "handoff.py", '\nlog.debug("one more protocol line")\n')
    assert checkpoint_key() == before  # the rerun resumes
    assert STEP.code_key() != step_before  # and it does rerun: torchrun runs the rank module by name


def test_changing_the_training_body_changes_the_checkpoint_key(package):
    before = checkpoint_key()
    append(package / "training" / "fit.py", "\n# an edit\n")
    assert checkpoint_key() != before  # resuming another body's checkpoint would be wrong: a fresh start


def test_the_key_covers_the_body_and_what_it_imports_only():
    hashed = {p.relative_to(PACKAGE).as_posix() for p in code.code_files(resume.TRAINING_CODE)}
    assert {"training/fit.py", "training/fine_tune.py", "training/world.py", "training/resume.py"} <= hashed
    assert not hashed & {f"training/{name}" for name in AROUND_THE_BODY}
