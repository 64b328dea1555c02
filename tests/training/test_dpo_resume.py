"""kill -9 in the middle of DPO training, then the same job again: it resumes from the last complete checkpoint and
ends with the losses of an uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.helpers import ROOT
from tests.training.test_dpo import dpo_spec, pair_splits  # noqa: F401  (the fixture)
from twinsft.config import LoraSpec, ModelSpec
from twinsft.training.job import TrainingJob
from twinsft.training.launch import train_here

pytestmark = pytest.mark.dpo

# The DPO job of argv[1] (folder: train/, test/, job.json), SIGKILLed right after the checkpoint at step argv[2]
# (tests/crash.py): a real crash, no cleanup.
KILLER = r"""
import sys
from pathlib import Path
from datasets import load_from_disk
from tests.crash import kill_after_save
from twinsft.config import DpoTrainingSpec, LoraSpec, ModelSpec
from twinsft.training.job import TrainingJob
from twinsft.training.launch import train_here

kill_after_save(int(sys.argv[2]))
folder = Path(sys.argv[1])
spec = (folder / "job.json").read_text().split("\n")
job = TrainingJob(load_from_disk(str(folder / "train")), load_from_disk(str(folder / "test")),
                  ModelSpec.model_validate_json(spec[0]), LoraSpec.model_validate_json(spec[1]),
                  DpoTrainingSpec.model_validate_json(spec[2]), folder / "adapter", kind="dpo")
train_here(job)
"""


def test_sigkill_mid_dpo_then_rerun_resumes_to_the_same_loss(tmp_path, tiny_merged_dir, pair_splits):  # noqa: F811
    train, test = pair_splits
    model, lora = ModelSpec(name=str(tiny_merged_dir), max_seq_length=128), LoraSpec(r=4, alpha=8)
    training = dpo_spec(tmp_path, max_steps=8, save_steps=2, per_device_eval_batch_size=4)
    train.save_to_disk(str(tmp_path / "train"))
    test.save_to_disk(str(tmp_path / "test"))
    (tmp_path / "job.json").write_text("\n".join(s.model_dump_json() for s in (model, lora, training)))
    crashed = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path), "4"], cwd=ROOT, capture_output=True,
                             text=True, timeout=600, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    (run_folder,) = (tmp_path / "ckpt").iterdir()
    assert sorted(p.name for p in run_folder.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]

    resumed = train_here(TrainingJob(train, test, model, lora, training, tmp_path / "adapter", kind="dpo"))
    assert resumed.resumed_from_step == 4 and resumed.steps == 8
    fresh = training.model_copy(update={"checkpoint_dir": str(tmp_path / "fresh")})
    straight = train_here(TrainingJob(train, test, model, lora, fresh, tmp_path / "straight", kind="dpo"))
    assert straight.resumed_from_step == 0
    assert [p.step for p in resumed.train_losses] == list(range(1, 9))
    assert [p.loss for p in resumed.train_losses] == pytest.approx([p.loss for p in straight.train_losses], rel=1e-5)
    assert resumed.eval_loss_after == pytest.approx(straight.eval_loss_after, rel=1e-5)
    assert resumed.eval_loss_after < straight.eval_loss_before  # it learnt something: the comparison means something
