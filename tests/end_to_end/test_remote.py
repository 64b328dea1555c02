"""As on a remote stack: every step in its own fresh process (tests/isolated_process.py), sharing only the ZenML
store and the artifact store with the client. Training killed mid-run resumes on the rerun, in another fresh
process and folder, from the checkpoint in the artifact store, and ends at the uninterrupted run's loss; the
merged model is an artifact that loads on the client; nothing is written to the client's output folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, STEPS, tiny_parameters
from tests.isolated_process import KILL_AFTER_SAVE, isolated_config, register_stack
from twinsft.training import resume

pytestmark = pytest.mark.remote

# What the test reads back from the runs, in a fresh process (this one's SQLite connections may hold a
# snapshot from before the runs).
READER = """
import json, sys
from pathlib import Path
from zenml.client import Client
from twinsft.steps.model_folder import ModelFolder
out = Path(sys.argv[2])
run = Client().get_pipeline_run(sys.argv[1])
report = run.steps["train_sft"].outputs["train_report"][0]
(out / "report.json").write_text(report.load().model_dump_json())
for name, file in (("train_dataset", "train.parquet"), ("test_dataset", "test.parquet")):
    run.steps["split"].outputs[name][0].load().to_parquet(str(out / file))
merged = run.steps["push_merged"].outputs["merged_model"][0].load()
result = run.steps["push_merged"].outputs["export_result"][0].load()
print(json.dumps({"statuses": {n: s.status.value for n, s in run.steps.items()},
                  "merged_files": sorted(p.name for p in merged.path.iterdir()), "local_dir": result.local_dir,
                  "resumed_from_step": report.run_metadata["resumed_from_step"]}))
"""


def run_isolated(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run.py", "--config", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def run_name(stdout: str) -> str:
    line = next(s for s in stdout.splitlines() if s.startswith("Look at run "))
    return line.removeprefix("Look at run ").split(":")[0]


def test_killed_training_resumes_from_the_artifact_store_in_a_fresh_process(tmp_path, tiny_model_dir, data_files,
                                                                             monkeypatch):
    import os

    (tmp_path / "pods").mkdir()
    stack = register_stack(workdir_root=str(tmp_path / "pods"))
    client_outputs = tmp_path / "client-outputs"
    params = tiny_parameters(tiny_model_dir, *data_files, client_outputs, max_steps=8, save_steps=3)
    cfg = isolated_config({"parameters": params}, base=tmp_path)
    assert "checkpoint_dir" not in cfg["parameters"]["training"]  # the artifact store's, by default
    config = tmp_path / "remote.yaml"
    config.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "ZENML_ACTIVE_STACK_ID": str(stack.id)}

    crashed = run_isolated(config, {**env, KILL_AFTER_SAVE: "6"})
    assert crashed.returncode != 0, crashed.stdout[-3000:]
    assert "exited with status -9" in crashed.stdout + crashed.stderr, (crashed.stdout + crashed.stderr)[-3000:]
    store = resume.store_root()
    (key,) = os.listdir(store)  # one folder, keyed by the training inputs
    # Checkpoint 3 was dropped once 6 was complete in the store.
    assert sorted(os.listdir(Path(store, key))) == ["checkpoint-6"]
    assert Path(store, key, "checkpoint-6", resume.COMPLETE_MARKER).is_file()

    rerun = run_isolated(config, env)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    reader = subprocess.run([sys.executable, "-c", READER, run_name(rerun.stdout), str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert reader.returncode == 0, reader.stderr[-3000:]
    seen = json.loads(reader.stdout.strip().splitlines()[-1])
    assert seen["statuses"] == {**dict.fromkeys(STEPS[:3], "cached"), **dict.fromkeys(STEPS[3:], "completed")}
    assert seen["resumed_from_step"] == 6
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= set(seen["merged_files"])
    assert seen["local_dir"] is None and not client_outputs.exists()  # the steps ran elsewhere
    assert not Path(store, key).exists()  # removed once training succeeded (keep_checkpoints: false)

    # The uninterrupted run: the same rows through the same library function, in this process.
    from datasets import Dataset

    from twinsft.config import RunConfig
    from twinsft.training import TrainReport, train_lora

    report = TrainReport.model_validate_json((tmp_path / "report.json").read_text())
    run_cfg = RunConfig.model_validate(cfg["parameters"])
    train = Dataset.from_parquet(str(tmp_path / "train.parquet"))
    test = Dataset.from_parquet(str(tmp_path / "test.parquet"))
    fresh = run_cfg.training.model_copy(update={"checkpoint_dir": str(tmp_path / "fresh")})
    straight = train_lora(train, test, run_cfg.model, run_cfg.lora, fresh, tmp_path / "adapter")
    assert report.steps == straight.steps == 8 and report.resumed_from_step == 6
    assert [p.loss for p in report.train_losses] == pytest.approx([p.loss for p in straight.train_losses], rel=1e-5)
    assert report.eval_loss_after == pytest.approx(straight.eval_loss_after, rel=1e-5)
