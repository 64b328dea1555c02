"""The whole pipeline on the tiny model under ZenML's local orchestrator: outputs and caching."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import (
    GENERAL_ROWS,
    ROOT,
    STEPS,
    add_row_only_this_test_has,
    all_cached,
    statuses,
    tiny_parameters,
    write_jsonl,
)
from twinsft.data.alpaca import ALPACA

pytestmark = pytest.mark.pipeline


def fresh(run):
    from zenml.client import Client

    return Client().get_pipeline_run(run.id)


def run_pipeline(tmp_path: Path, parameters: dict):
    from pipelines import sft_pipeline

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"parameters": parameters}))
    return sft_pipeline.with_options(config_path=str(config))()


@pytest.fixture
def params(tmp_path, tiny_model_dir, data_files):
    add_row_only_this_test_has(data_files[0], "pipeline")
    return tiny_parameters(tiny_model_dir, *data_files, tmp_path)


def test_end_to_end_then_fully_cached(tmp_path, params):
    first = run_pipeline(tmp_path, params)
    assert statuses(first) == dict.fromkeys(STEPS, "completed")
    report = first.steps["train_sft"].outputs["train_report"][0].load()
    assert report.steps == 2 and report.eval_loss_before > 0 and report.backend == "trl"
    adapter = first.steps["train_sft"].outputs["lora_adapter"][0].load()
    assert (Path(adapter) / "adapter_model.safetensors").is_file()
    raw = first.steps["load_datasets"].outputs["raw_dataset"][0]
    assert raw.run_metadata["rows_per_source"] == {"twin": 25, "general": 16}  # 24 shared rows + its own
    train = first.steps["split"].outputs["train_dataset"][0].load()
    test = first.steps["split"].outputs["test_dataset"][0].load()
    assert (len(train), len(test)) == (33, 8) and train[0]["text"].endswith("</s>")
    generation = first.steps["smoke_generate"].outputs["smoke_generation"][0]
    assert isinstance(generation.load(), str) and "stopped_at_eos" in generation.run_metadata
    # Base vs tuned on the first 4 held-out rows (tiny_parameters' eval_samples), read back from their text.
    evaluation = first.steps["smoke_generate"].outputs["evaluation"][0]
    compared = evaluation.load()
    assert (compared.samples, compared.test_rows) == (4, 8)
    assert [ALPACA.training_text(r.instruction, r.reference, "</s>") for r in compared.rows] == test["text"][:4]
    assert all(r.base.reference_loss > 0 and r.tuned.reference_loss > 0 for r in compared.rows)
    assert evaluation.run_metadata["eval_samples"] == 4
    for key, value in compared.summary().items():
        assert evaluation.run_metadata[key] == pytest.approx(value), key
    # The merged model: file by file in the artifact store (no tarball), loaded into a local copy; also in output_dir.
    merged_artifact = first.steps["push_merged"].outputs["merged_model"][0]
    stored = set(os.listdir(merged_artifact.uri))
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= stored
    assert not any(name.endswith((".tar", ".gz", ".zip")) for name in stored)
    merged = merged_artifact.load()
    saved = tmp_path / "merged" / "model.safetensors"
    assert (Path(merged) / "model.safetensors").read_bytes() == saved.read_bytes()
    result = first.steps["push_merged"].outputs["export_result"][0].load()
    assert result.local_dir == str(saved.parent) and not result.pushed

    second = run_pipeline(tmp_path, params)
    assert statuses(second) == all_cached()


def test_training_change_reruns_training_and_after_only(tmp_path, params):
    run_pipeline(tmp_path, params)
    params["training"]["learning_rate"] = 1e-3
    run = run_pipeline(tmp_path, params)
    assert statuses(run) == {
        "load_datasets": "cached", "format_alpaca": "cached", "split": "cached",
        "train_sft": "completed", "smoke_generate": "completed", "push_merged": "completed", "promote": "completed",
    }


def test_data_file_edits_invalidate_by_content(tmp_path, params):
    run_pipeline(tmp_path, params)
    general = Path(params["data"]["sources"][1]["path"])
    # Same rows, different bytes (key order): reloaded, but the content hash keeps the rest cached.
    general.write_text("".join(json.dumps(dict(reversed(list(r.items())))) + "\n" for r in GENERAL_ROWS))
    run = run_pipeline(tmp_path, params)
    assert statuses(run) == {**all_cached(), "load_datasets": "completed"}
    # A changed row reruns everything downstream of the data, except what gets identical inputs back: the
    # adapter is stored with a content hash, so smoke_generate (adapter + test split) reruns only if training
    # made other bytes (2 steps of 2 rows may never see the changed row).
    write_jsonl(general, [{**GENERAL_ROWS[0], "output": "changed"}, *GENERAL_ROWS[1:]])
    changed = run_pipeline(tmp_path, params)
    status = statuses(changed)
    assert status == {**dict.fromkeys(STEPS, "completed"), "smoke_generate": status["smoke_generate"]}

    def hashes(r):
        r = fresh(r)
        return (r.steps["train_sft"].outputs["lora_adapter"][0].content_hash,
                r.steps["split"].outputs["test_dataset"][0].content_hash)

    assert status["smoke_generate"] == ("cached" if hashes(changed) == hashes(run) else "completed")


def test_editing_library_code_invalidates_the_steps_that_use_it(tmp_path, params):
    """Runs a copy of the project twice via run.py, editing twinsft/formatting.py in between."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "run.py", project)
    for item in ("twinsft", "steps", "pipelines", "configs"):
        shutil.copytree(ROOT / item, project / item, ignore=shutil.ignore_patterns("__pycache__"))
    config = project / "tiny.yaml"
    config.write_text(yaml.safe_dump({"parameters": params}))
    env = {**os.environ, "PYTHONPATH": str(project), "ZENML_CONFIG_PATH": str(tmp_path / "zenml")}

    def run() -> dict[str, str]:
        proc = subprocess.run([sys.executable, "run.py", "--config", str(config)], cwd=project, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = [line.split() for line in proc.stdout.splitlines()]  # the summary table: step, status, ...
        return {row[0]: row[1] for row in rows if len(row) > 1 and row[0] in STEPS}

    assert run() == dict.fromkeys(STEPS, "completed")
    with (project / "twinsft" / "data" / "formatting.py").open("a") as fh:
        fh.write("\n# an edit: formatting code changed\n")
    # format_alpaca and split use formatting.py; their outputs are unchanged, so training stays cached.
    assert run() == {**all_cached(), "format_alpaca": "completed", "split": "completed"}
