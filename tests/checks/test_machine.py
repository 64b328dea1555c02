"""The GPU steps check the machine they run on (a pod, on a remote stack) at their start, with the same
one-line errors preflight gives on the client, before any model loads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from datasets import Dataset

from twinsft.config import ExportSpec, GenerationSpec, LoraSpec, ModelSpec, TrainingSpec
from twinsft.errors import ConfigError

NO_CUDA = pytest.mark.skipif(
    importlib.util.find_spec("torch") is not None and __import__("torch").cuda.is_available(), reason="CUDA present"
)
QLORA = ModelSpec(name="./not-loaded", load_in_4bit=True)  # never loaded: the check comes first
ROWS = Dataset.from_list([{"text": "a"}, {"text": "b"}])


@NO_CUDA
def test_train_sft_and_smoke_generate_refuse_qlora_on_a_machine_without_cuda():
    from twinsft.steps.smoke_generate import smoke_generate
    from twinsft.steps.train_sft import train_sft

    message = r"model.load_in_4bit \(QLoRA\) needs a CUDA GPU; set it to false"
    with pytest.raises(ConfigError, match=message):
        train_sft.entrypoint(ROWS, ROWS, model=QLORA, lora=LoraSpec(), training=TrainingSpec(optim="adamw_torch"))
    with pytest.raises(ConfigError, match=message):
        smoke_generate.entrypoint(Path("/nonexistent"), ROWS, model=QLORA, generation=GenerationSpec(eval_samples=1))


def test_push_merged_needs_the_token_in_its_own_environment(monkeypatch):
    from twinsft.steps.push_merged import push_merged
    from twinsft.training.report import TrainReport

    monkeypatch.delenv("HF_TOKEN", raising=False)
    export = ExportSpec(push=True, repo_id="me/twin")
    with pytest.raises(ConfigError, match=r"export\.push is on but HF_TOKEN is not set"):
        push_merged.entrypoint(Path("/nonexistent"), TrainReport.model_construct(), model=QLORA, lora=LoraSpec(),
                               training=TrainingSpec(), export=export)


def test_a_gated_model_needs_a_token_in_the_step(monkeypatch, tmp_path):
    from twinsft.checks.machine import check_machine

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no cached copy, no `hf auth login` token
    with pytest.raises(ConfigError, match=r"model\.name 'meta-llama/Llama-3\.1-8B' is gated on the Hub"):
        check_machine(ModelSpec(name="meta-llama/Llama-3.1-8B"), merge=True)
    monkeypatch.setenv("HF_TOKEN", "hf_from_a_zenml_secret")
    check_machine(ModelSpec(name="meta-llama/Llama-3.1-8B"), merge=True)
