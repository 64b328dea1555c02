"""Smoke generation, the merged 16-bit export, and the Hub push at its network boundary."""

import json
from pathlib import Path

import pytest
import torch

from twinsft.config import ExportSpec, LoraSpec, ModelSpec
from twinsft.errors import ConfigError
from twinsft.export import PushError, export_merged
from twinsft.generation.greedy import generate, load_adapted
from twinsft.prompts import ALPACA


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter with non-zero B matrices, so merging visibly changes the weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    spec = LoraSpec(r=4, alpha=8)
    model = get_peft_model(base, LoraConfig(r=spec.r, lora_alpha=spec.alpha, target_modules=spec.target_modules))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def test_generate_uses_the_alpaca_prompt_and_reports_stop(tiny_model_dir, adapter_dir):
    model, tok = load_adapted(ModelSpec(name=str(tiny_model_dir)), adapter_dir)
    out = generate(model, tok, "Give me a tip about topic 3.", max_new_tokens=6)
    assert out.prompt == ALPACA.prompt("Give me a tip about topic 3.")
    assert 1 <= out.new_tokens <= 6
    if not out.stopped_at_eos:
        assert out.new_tokens == 6  # only the token budget may end a generation that did not stop
    again = generate(model, tok, "Give me a tip about topic 3.", max_new_tokens=6)
    assert again.response == out.response  # greedy


def test_merged_model_matches_adapter_model_and_carries_the_template(tiny_model_dir, adapter_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = ModelSpec(name=str(tiny_model_dir))
    result = export_merged(spec, adapter_dir, ExportSpec(output_dir=str(tmp_path / "merged")))
    assert result.dtype == "bfloat16" and not result.pushed
    saved = tmp_path / "merged"
    assert json.loads((saved / "config.json").read_text())["dtype"] == "bfloat16"
    assert not (saved / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(saved, dtype=torch.float32)
    adapted, _ = load_adapted(spec, adapter_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        want, got, untuned = (m(input_ids=ids).logits for m in (adapted, merged, base))
    torch.testing.assert_close(got, want, atol=0.05, rtol=0.05)  # bf16 rounding of merged weights
    assert (untuned - want).abs().max() > 0.5  # the adapter really changed the model
    tok = AutoTokenizer.from_pretrained(saved)
    assert merged.config.eos_token_id == tok.eos_token_id != merged.config.pad_token_id == tok.pad_token_id
    assert merged.generation_config.eos_token_id == tok.eos_token_id
    assert tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False) == ALPACA.prompt("Hi")


class FakeHfApi:
    """Stands in for huggingface_hub.HfApi at the network boundary; records calls, can fail."""

    calls: list = []
    fail_upload = False

    def __init__(self, token=None):
        self.token = token

    def repo_exists(self, repo_id):
        return False

    def create_repo(self, repo_id, private, exist_ok, repo_type):
        FakeHfApi.calls.append(("create_repo", repo_id, private, self.token))

    def upload_folder(self, folder_path, repo_id, commit_message):
        if FakeHfApi.fail_upload:
            raise ConnectionError("hub unreachable")
        FakeHfApi.calls.append(("upload_folder", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))


@pytest.fixture
def fake_hub(monkeypatch):
    import huggingface_hub

    FakeHfApi.calls, FakeHfApi.fail_upload = [], False
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    return FakeHfApi


def test_push_uploads_the_saved_folder_privately(tiny_model_dir, adapter_dir, tmp_path, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    export = ExportSpec(output_dir=str(tmp_path / "m"), push=True, repo_id="me/twin")
    result = export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, export, run_name="run-1")
    assert result.pushed and result.repo_url == "https://huggingface.co/me/twin"
    assert fake_hub.calls[0] == ("create_repo", "me/twin", True, "hf_test_token")
    assert fake_hub.calls[1][0] == "upload_folder" and "config.json" in fake_hub.calls[1][2]


def test_failed_push_keeps_the_local_model(tiny_model_dir, adapter_dir, tmp_path, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    fake_hub.fail_upload = True
    export = ExportSpec(output_dir=str(tmp_path / "m"), push=True, repo_id="me/twin")
    with pytest.raises(PushError, match="hub unreachable.*the merged model is saved at"):
        export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, export)
    assert (tmp_path / "m" / "config.json").is_file() and (tmp_path / "m" / "model.safetensors").is_file()


def test_push_without_token_is_a_clear_error(tiny_model_dir, adapter_dir, tmp_path, fake_hub, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    export = ExportSpec(output_dir=str(tmp_path / "m"), push=True, repo_id="me/twin")
    with pytest.raises(ConfigError, match="HF_TOKEN is not set"):
        export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, export)
    assert (tmp_path / "m" / "config.json").is_file()
