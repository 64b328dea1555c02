"""A run killed with SIGKILL mid-training resumes from its last complete checkpoint on the same command."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, STEPS, tiny_parameters
from twinsft.training import resume

pytestmark = pytest.mark.pipeline

# run.py, SIGKILLed right after the checkpoint at step argv[1] (tests/crash.py).
KILLER = r"""
import sys
from tests.crash import kill_after_save
kill_after_save(int(sys.argv[1]))
import run
sys.exit(run.main(sys.argv[2:]))
"""


READER = """
import json, sys
from pathlib import Path
from zenml.client import Client
run, out = Client().get_pipeline_run(sys.argv[1]), Path(sys.argv[2])
report = run.steps["train_sft"].outputs["train_report"][0]
(out / "report.json").write_text(report.load().model_dump_json())
for name, file in (("train_dataset", "train.parquet"), ("test_dataset", "test.parquet")):
    run.steps["split"].outputs[name][0].load().to_parquet(str(out / file))
print(json.dumps(report.run_metadata["resumed_from_step"]))
"""


def step_statuses(stdout: str) -> dict[str, str]:
    rows = [line.split() for line in stdout.splitlines()]  # run.py's summary table: step, status, ...
    return {row[0]: row[1] for row in rows if len(row) > 1 and row[0] in STEPS}


def run_name(stdout: str) -> str:
    line = next(s for s in stdout.splitlines() if s.startswith("Look at run "))
    return line.removeprefix("Look at run ").split(":")[0]


def test_sigkill_mid_training_then_rerun_resumes_to_the_same_loss(tmp_path, tiny_model_dir, data_files):

    from twinsft.config import RunConfig
    from twinsft.training import TrainReport, train_lora

    params = tiny_parameters(tiny_model_dir, *data_files, tmp_path, max_steps=12, save_steps=3)
    config = tmp_path / "resume.yaml"
    config.write_text(yaml.safe_dump({"parameters": params}))
    checkpoints = Path(params["training"]["checkpoint_dir"])

    crashed = subprocess.run(
        [sys.executable, "-c", KILLER, "6", "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    (run_folder,) = checkpoints.iterdir()  # one folder, keyed by the training inputs
    assert sorted(p.name for p in run_folder.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    # A crash while writing the next checkpoint: files there, but no completion marker.
    half = run_folder / "checkpoint-9"
    shutil.copytree(run_folder / "checkpoint-6", half)
    (half / resume.COMPLETE_MARKER).unlink()
    (half / "trainer_state.json").unlink()

    rerun = subprocess.run(
        [sys.executable, "run.py", "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert step_statuses(rerun.stdout) == {
        "load_datasets": "cached", "format_alpaca": "cached", "split": "cached",
        "train_sft": "completed", "smoke_generate": "completed", "push_merged": "completed", "promote": "completed",
    }
    assert "resuming from" in rerun.stdout + rerun.stderr and "half-written checkpoint" in rerun.stdout + rerun.stderr
    # Read the run in a new process: this one's SQLite connections may hold a snapshot from before it.
    reader = subprocess.run([sys.executable, "-c", READER, run_name(rerun.stdout), str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert reader.returncode == 0, reader.stderr[-3000:]
    report = TrainReport.model_validate_json((tmp_path / "report.json").read_text())
    assert report.resumed_from_step == 6 and report.steps == 12
    assert json.loads(reader.stdout.strip().splitlines()[-1]) == 6  # the step's metadata
    assert not run_folder.exists()  # removed once training succeeded (keep_checkpoints: false)

    # The uninterrupted run: same inputs through the same library function, fresh checkpoint folder.
    from datasets import Dataset

    cfg = RunConfig.model_validate(params)
    train = Dataset.from_parquet(str(tmp_path / "train.parquet"))
    test = Dataset.from_parquet(str(tmp_path / "test.parquet"))
    fresh = cfg.training.model_copy(update={"checkpoint_dir": str(tmp_path / "fresh")})
    straight = train_lora(train, test, cfg.model, cfg.lora, fresh, tmp_path / "adapter")
    assert straight.resumed_from_step == 0
    assert [p.step for p in report.train_losses] == list(range(1, 13))
    assert [p.loss for p in report.train_losses] == pytest.approx([p.loss for p in straight.train_losses], rel=1e-5)
    assert report.eval_loss_after == pytest.approx(straight.eval_loss_after, rel=1e-5)
    assert report.train_loss == pytest.approx(straight.train_loss, rel=1e-5)
