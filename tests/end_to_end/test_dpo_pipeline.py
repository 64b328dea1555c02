"""The DPO stage in ZenML on the tiny model: SFT then DPO in one run (a rerun finds every step cached), and a
standalone DPO run from that run's merged model, recorded on its ZenML Model version."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from tests.helpers import STEPS, TWIN_ROWS, add_row_only_this_test_has, all_cached, statuses, tiny_parameters

pytestmark = [pytest.mark.pipeline, pytest.mark.dpo]

DPO_STEPS = ("load_preferences", "format_preferences", "split_preferences", "train_dpo", "evaluate_dpo",
             "push_dpo_merged")


def dpo_stage(tmp_path: Path, **start) -> dict:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": r["instruction"], "chosen": r["output"],
                                         "rejected": f"{r['output']} Trust me, it always works."}) + "\n"
                             for r in TWIN_ROWS))
    return {
        "start": start,
        "preference": {"sources": [{"name": "prefs", "path": str(pairs)}]},
        "split": {"test_size": 0.25, "seed": 0},
        "lora": {"r": 4, "alpha": 8},
        "training": {"learning_rate": 5e-3, "beta": 0.5, "per_device_train_batch_size": 2,
                     "per_device_eval_batch_size": 2, "gradient_accumulation_steps": 1, "max_steps": 2,
                     "warmup_steps": 0, "optim": "adamw_torch", "gradient_checkpointing": False, "max_length": 128,
                     "checkpoint_dir": str(tmp_path / "dpo-checkpoints")},
        "evaluation": {"greedy_prompts": 2, "max_new_tokens": 8},
        "export": {"output_dir": str(tmp_path / "dpo-merged")},
    }


def run_config(pipeline, tmp_path: Path, parameters: dict, name: str):
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"parameters": parameters}))
    return pipeline.with_options(config_path=str(config))()


def test_chained_run_then_cached_rerun_then_standalone_dpo(tmp_path, tiny_model_dir, data_files):
    from twinsft.pipelines.llm_dpo import dpo_pipeline, twin_pipeline

    add_row_only_this_test_has(data_files[0], "chained DPO")
    sft = tiny_parameters(tiny_model_dir, *data_files, tmp_path)
    chained = {**sft, "dpo": dpo_stage(tmp_path)}
    first = run_config(twin_pipeline, tmp_path, chained, "twin")
    assert statuses(first, STEPS + DPO_STEPS) == dict.fromkeys(STEPS + DPO_STEPS, "completed")
    report = first.steps["train_dpo"].outputs["dpo_report"][0].load()
    assert report.steps == 2 and report.eval_loss_before == pytest.approx(math.log(2), abs=1e-4)
    evaluation = first.steps["evaluate_dpo"].outputs["preference_evaluation"][0]
    summary = evaluation.load().summary()
    assert summary["eval_pairs"] == 6 and summary["eval_greedy_prompts"] == 2
    assert evaluation.run_metadata["dpo_reward_margin"] == summary["dpo_reward_margin"]
    merged = Path(first.steps["push_dpo_merged"].outputs["dpo_export_result"][0].load().local_dir)
    assert (merged / "model.safetensors").is_file() and "SFT vs DPO" in (merged / "README.md").read_text()
    version = first.model_version.run_metadata
    assert "dpo_eval_loss_after" in version and "dpo_preference_accuracy" in version

    rerun = run_config(twin_pipeline, tmp_path, chained, "twin")
    assert statuses(rerun, STEPS + DPO_STEPS) == all_cached(STEPS + DPO_STEPS)

    # Standalone, from the chained run's merged SFT model, named by run.
    standalone = {"model": sft["model"], **dpo_stage(tmp_path, artifact="merged_model", run=first.name)}
    alone = run_config(dpo_pipeline, tmp_path, standalone, "dpo")
    assert statuses(alone, DPO_STEPS)["train_dpo"] == "completed"
    meta = alone.model_version.run_metadata
    assert meta["sft_run"] == first.name and meta["sft_artifact"] == "merged_model"
    assert meta["sft_artifact_id"] == str(first.steps["push_merged"].outputs["merged_model"][0].id)
    assert meta["sft_model"] == "twinsft-twin" and meta["sft_model_version_number"] == first.model_version.number
