"""The merged export is verified before it is kept, and pushing refuses to clobber or expose a Hub repo."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import GENERAL_ROWS
from tests.fake_hub import FakeHub
from tests.test_generation_export import adapter_dir  # noqa: F401  (module fixture: a LoRA with real updates)
from twinsft.config import ExportSpec, ModelSpec
from twinsft.export import PushError, export_merged
from twinsft.export.merge import PROBE_TOKENS, ExportMismatch, cast_weights, check_reload, probe_ids
from twinsft.generation.greedy import greedy_ids
from twinsft.prompts import ALPACA


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub

    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", fake.api)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    return fake


def held_out_ids(tokenizer):
    text = ALPACA.training_text(GENERAL_ROWS[3]["instruction"], GENERAL_ROWS[3]["output"], tokenizer.eos_token)
    return tokenizer(text, return_tensors="pt").input_ids


def test_merge_matches_the_adapter_model_and_the_reloaded_copy_generates_the_same(tiny_model_dir, adapter_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, ExportSpec(output_dir=str(tmp_path / "m")))
    assert result.merge_max_logit_diff < 1e-4  # the fp32 merge, checked inside the export itself
    assert result.verified_tokens > 0

    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    ids = held_out_ids(tok)
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter_dir)).eval()
    merged32 = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter_dir))
    merged32 = merged32.merge_and_unload().eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        want, got, untuned = (m(input_ids=ids).logits for m in (adapted, merged32, base))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)  # fp32 on CPU: the merge itself is exact
    assert (untuned - want).abs().max() > 0.5  # and the adapter really changes the model

    # The 16-bit copy on disk generates what the same 16-bit model generated in memory before saving.
    in_memory = cast_weights(merged32, torch.bfloat16)  # as loading with dtype= does (RoPE buffers stay fp32)
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "m", dtype=torch.bfloat16)
    probe = probe_ids(tok, "cpu")
    assert greedy_ids(saved, tok, probe, 12) == greedy_ids(in_memory, tok, probe, 12)


def test_saved_chat_template_renders_exactly_the_training_text(tiny_model_dir, adapter_dir, tmp_path):
    from transformers import AutoTokenizer

    export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, ExportSpec(output_dir=str(tmp_path / "m")))
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    row = GENERAL_ROWS[5]
    chat = [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["output"]}]
    assert tok.apply_chat_template(chat, tokenize=False) == ALPACA.training_text(
        row["instruction"], row["output"], tok.eos_token
    )
    assert tok.apply_chat_template(chat[:1], tokenize=False) == ALPACA.prompt(row["instruction"])


def test_reload_check_fails_when_the_saved_model_differs(tiny_model_dir, adapter_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, ExportSpec(output_dir=str(tmp_path / "m")))
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    probe = probe_ids(tok, "cpu")
    tuned = greedy_ids(AutoModelForCausalLM.from_pretrained(tmp_path / "m"), tok, probe, PROBE_TOKENS)
    untuned = greedy_ids(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tok, probe, PROBE_TOKENS)
    assert tuned != untuned
    check_reload(tuned, list(tuned), "x")
    with pytest.raises(ExportMismatch, match="after reloading"):
        check_reload(tuned, untuned, "x")


def push_spec(tmp_path, **kw) -> ExportSpec:
    return ExportSpec(output_dir=str(tmp_path / "m"), push=True, repo_id="me/twin", **kw)


def test_push_is_private_with_run_name_and_card(tiny_model_dir, adapter_dir, tmp_path, hub):
    result = export_merged(
        ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path), run_name="llm_sft-42", card="# card\n"
    )
    assert result.pushed and result.commit_url.startswith("https://huggingface.co/me/twin/commit/")
    assert hub.repos["me/twin"]["private"] is True and hub.tokens == ["hf_test_token"]
    (commit,) = hub.commits
    assert "llm_sft-42" in commit["message"] and {"README.md", "config.json", "model.safetensors"} <= set(commit["files"])
    assert hub.repos["me/twin"]["files"]["README.md"] == b"# card\n"


def test_push_refuses_a_repo_with_files_unless_overwrite(tiny_model_dir, adapter_dir, tmp_path, hub):
    hub.repos["me/twin"] = {"private": True, "files": {".gitattributes": b"", "model.safetensors": b"old"}}
    with pytest.raises(PushError) as err:
        export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path))
    assert "already holds 1 file(s)" in str(err.value) and "export.overwrite: true" in str(err.value)
    assert "\n" not in str(err.value) and not hub.commits
    assert hub.repos["me/twin"]["files"]["model.safetensors"] == b"old"
    assert (tmp_path / "m" / "model.safetensors").is_file()  # the local model is kept
    export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path, overwrite=True))
    assert hub.repos["me/twin"]["files"]["model.safetensors"] != b"old"


def test_push_into_an_existing_empty_repo_is_allowed(tiny_model_dir, adapter_dir, tmp_path, hub):
    """What a retry after a failed upload finds: the repo was created, nothing was uploaded."""
    hub.repos["me/twin"] = {"private": True, "files": {".gitattributes": b""}}
    assert export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path)).pushed


def test_push_refuses_a_public_repo_when_private_is_asked(tiny_model_dir, adapter_dir, tmp_path, hub):
    hub.repos["me/twin"] = {"private": False, "files": {".gitattributes": b""}}
    with pytest.raises(PushError, match="Hub repo 'me/twin' is public"):
        export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path))
    assert export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path, private=False)).pushed


def test_failed_upload_is_one_line_with_the_retry(tiny_model_dir, adapter_dir, tmp_path, hub):
    hub.fail_upload = True
    with pytest.raises(PushError) as err:
        export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, push_spec(tmp_path))
    text = str(err.value)
    assert "\n" not in text and "ConnectionError: 502 Bad Gateway from the Hub" in text
    assert f"saved at {tmp_path / 'm'}" in text and "rerun the same command to retry" in text
    assert (tmp_path / "m" / "model.safetensors").is_file()
