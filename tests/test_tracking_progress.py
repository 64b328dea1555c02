"""Plain-function checks: where Comet comes from, progress lines, --from-step bookkeeping."""

from __future__ import annotations

import logging

import pytest

from tests.helpers import tiny_parameters
from twinsft.config import RunConfig
from twinsft.errors import ConfigError, UserError
from twinsft.progress import TokenProgress, each, format_duration
from twinsft.cli.replay import changed_upstream, steps_before
from twinsft.tracking import choose_mode, flatten, hf_report_to


@pytest.mark.parametrize(
    ("report_to", "flavor", "env", "mode"),
    [
        ([], "comet", {"COMET_API_KEY": "k"}, "off"),  # the config decides; a stack tracker alone does not
        (["tensorboard"], None, {}, "off"),
        (["comet_ml"], "comet", {}, "stack"),  # the stack's tracker has its own credentials
        (["comet_ml"], "comet", {"COMET_MODE": "offline"}, "stack"),
        (["comet_ml"], "mlflow", {"COMET_MODE": "OFFLINE"}, "offline"),
        (["comet_ml"], None, {"COMET_MODE": "offline", "COMET_API_KEY": "k"}, "offline"),
        (["comet_ml"], None, {"COMET_API_KEY": "k"}, "online"),
    ],
)
def test_choose_mode(report_to, flavor, env, mode):
    assert choose_mode(report_to, flavor, env) == mode


def test_comet_asked_without_key_fails_clearly():
    with pytest.raises(ConfigError, match="COMET_API_KEY is not set"):
        choose_mode(["comet_ml"], None, {})


def test_transformers_gets_every_integration_but_comet():
    assert hf_report_to(["comet_ml"]) == "none"
    assert hf_report_to(["comet_ml", "tensorboard"]) == ["tensorboard"]


def test_flatten_nested_parameters():
    assert flatten({"lora": {"r": 4, "target_modules": ["q", "v"]}, "seed": 0}) == {
        "lora.r": 4, "lora.target_modules": "['q', 'v']", "seed": 0}


def test_format_duration():
    assert [format_duration(s) for s in (4.2, 65, 3720, float("nan"))] == ["4s", "1m05s", "1h02m", "?"]


def test_each_logs_per_source_progress(caplog):
    caplog.set_level(logging.INFO, logger="twinsft.progress")
    assert list(each(["twin", "general"], "data source")) == ["twin", "general"]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "data source 1/2 'twin': loading" and lines[-1].startswith("data source 2/2 'general': done")


def test_token_progress_counts_new_tokens_only(caplog):
    import torch

    caplog.set_level(logging.INFO, logger="twinsft.progress")
    streamer = TokenProgress(max_new_tokens=8, every=2)
    streamer.put(torch.tensor([[5, 6, 7, 8, 9]]))  # the prompt
    for token in (1, 2, 3):
        streamer.put(torch.tensor([token]))
    streamer.end()
    assert streamer.count == 3
    assert [r.getMessage().split(",")[0] for r in caplog.records] == [
        "generating 2/8 new tokens", "generated 3/8 new tokens"]


def test_training_progress_lines(tmp_path, tiny_model_dir, data_files, caplog):
    """The real trainer on the tiny model: one line per logged step, with loss, tok/s and ETA."""
    from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
    from tests.helpers import load_mix
    from twinsft.data.formatting import render_alpaca, split_dataset
    from twinsft.training import train_lora

    caplog.set_level(logging.INFO, logger="twinsft.progress")
    params = tiny_parameters(tiny_model_dir, *data_files, tmp_path, logging_steps=1)
    cfg = RunConfig.model_validate(params)
    raw, _ = load_mix(cfg.data)
    train, test = split_dataset(render_alpaca(raw, eos_token="</s>"), test_size=0.2, seed=0)
    train_lora(train, test, ModelSpec(**params["model"]), LoraSpec(**params["lora"]),
               TrainingSpec(**params["training"]), tmp_path / "adapter")
    lines = [r.getMessage() for r in caplog.records]
    steps = [line for line in lines if line.startswith("step ") and "  loss " in line]
    assert [line.split()[1] for line in steps] == ["1/2", "2/2"]
    assert all("tok/s" in line and "ETA" in line for line in steps[1:])
    assert any(line.startswith("data source 1/2 'twin'") for line in lines)


def test_from_step_names_and_changed_upstream():
    assert steps_before("train_sft") == ["load_datasets", "format_alpaca", "split"]
    assert steps_before("load_datasets") == []
    with pytest.raises(UserError, match="pick one of"):
        steps_before("train")
    base = {"data": {"sources": [{"name": "a", "path": "a.jsonl"}]}}
    cfg = RunConfig.model_validate(base)
    assert changed_upstream({**base, "lora": None}, cfg, "train_sft") == []
    assert changed_upstream({**base, "split": {"test_size": 0.5}}, cfg, "train_sft") == ["split"]
    assert changed_upstream({**base, "split": {"test_size": 0.5}}, cfg, "split") == []
    assert changed_upstream({"data": {"sources": []}, "bogus": 1}, cfg, "split") == ["data", "model"]


def test_top_level_model_needs_a_name(tmp_path):
    from twinsft.cli.config_file import read_run_file

    path = tmp_path / "c.yaml"
    path.write_text("model: meta-llama/Llama-3.1-8B\nparameters: {}\n")
    with pytest.raises(ConfigError, match="top-level 'model:'.*needs a 'name'.*parameters.model"):
        read_run_file(path)
    path.write_text("model: {name: mine}\nparameters: {}\n")
    assert read_run_file(path)["model"] == {"name": "mine"}
