"""model.base_precision: the frozen base in FP8 is Unsloth's, on compute capability 9.0+; anything else is one
line and exit 2 before a model loads, QLoRA stays as it is, and generation reads the 16-bit base."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.helpers import run_cli, tiny_parameters, write_config
from twinsft.checks.machine import check_machine
from twinsft.config import ModelSpec, RunConfig, TrainingSpec
from twinsft.errors import ConfigError
from twinsft.runtime import check_fp8_base, check_training_requirements, unsloth_fp8_mode


def test_the_choices_and_what_unsloth_gets():
    assert ModelSpec().base_precision == "auto"
    assert [unsloth_fp8_mode(p) for p in ("auto", "fp8", "fp8_block")] == [False, True, "block"]
    with pytest.raises(ValidationError, match="base_precision"):
        ModelSpec(base_precision="fp4")


def test_qlora_and_an_fp8_base_are_two_formats_for_one_base():
    with pytest.raises(ValidationError, match=r"model.load_in_4bit \(QLoRA\) and model.base_precision 'fp8'"):
        ModelSpec(load_in_4bit=True, base_precision="fp8")
    assert ModelSpec(load_in_4bit=True).base_precision == "auto"  # QLoRA as before


def test_trl_backend_with_an_fp8_base_is_a_config_error():
    data = {"sources": [{"name": "x", "path": "x.jsonl"}]}
    with pytest.raises(ValidationError, match=r"base_precision 'fp8_block' needs training\.backend unsloth"):
        RunConfig.model_validate({"data": data, "model": {"base_precision": "fp8_block"},
                                  "training": {"backend": "trl"}})
    RunConfig.model_validate({"data": data, "model": {"base_precision": "fp8"}, "training": {"backend": "unsloth"}})


def test_this_cpu_cannot_train_on_an_fp8_base():
    with pytest.raises(ConfigError, match=r"model.base_precision 'fp8' needs a CUDA GPU of compute capability 9.0\+"):
        check_training_requirements(ModelSpec(base_precision="fp8"), TrainingSpec(optim="adamw_torch"))
    with pytest.raises(ConfigError, match=r"needs training\.backend unsloth"):
        check_fp8_base("fp8", "trl")


@pytest.mark.parametrize(("capability", "message"), [
    ((8, 9), r"needs compute capability 9.0\+ \(H100, H200\); FakeCard has 8.9"),
    ((8, 0), "FakeCard has 8.0"),
])
def test_older_cards_are_refused_by_name(monkeypatch, capability, message):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "FakeCard")
    with pytest.raises(ConfigError, match=message):
        check_fp8_base("fp8_block", "auto")


def test_a_hopper_card_passes_when_unsloth_and_torchao_are_there(monkeypatch):
    import torch

    import twinsft.runtime as runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(runtime, "unsloth_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"needs the Unsloth backend: `pip install -e '.\[gpu\]'`"):
        check_fp8_base("fp8", "unsloth")
    monkeypatch.setattr(runtime, "unsloth_installed", lambda: True)
    real_find_spec = runtime.importlib.util.find_spec
    monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name: None if name == "torchao"
                        else real_find_spec(name))
    with pytest.raises(ConfigError, match="needs torchao"):
        check_fp8_base("fp8", "unsloth")
    monkeypatch.setattr(runtime.importlib.util, "find_spec", lambda name: object())
    check_fp8_base("fp8", "unsloth")  # passes


def test_generation_and_the_merge_read_the_16bit_base_so_they_run_here(tiny_model_dir):
    model = ModelSpec(name=str(tiny_model_dir), base_precision="fp8")
    check_machine(model, merge=True)
    check_machine(model)  # smoke_generate: the adapter on the 16-bit base
    with pytest.raises(ConfigError, match="base_precision 'fp8' needs a CUDA GPU"):
        check_machine(model, TrainingSpec(optim="adamw_torch"))  # train_sft


@pytest.mark.parametrize(("update", "message"), [
    ({"model": {"base_precision": "fp8"}}, "model.base_precision 'fp8' needs a CUDA GPU of compute capability 9.0+"),
    ({"model": {"base_precision": "fp8"}, "training": {"backend": "trl"}}, "needs training.backend unsloth"),
    ({"model": {"base_precision": "fp8_block", "load_in_4bit": True}}, "both set the frozen base's format"),
])
def test_run_py_exits_2_with_one_line_before_a_model_loads(tmp_path, data_files, tiny_model_dir, update, message):
    parameters = tiny_parameters(tiny_model_dir, *data_files, tmp_path)
    for section, values in update.items():
        parameters[section].update(values)
    proc = run_cli("--config", str(write_config(tmp_path / "fp8.yaml", parameters)))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "'transformers'" not in proc.stdout.split("HEAVY")[-1]  # no model was loaded
