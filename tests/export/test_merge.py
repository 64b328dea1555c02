"""The merged 16-bit export: it matches the adapter model, is verified before it is kept, and carries the template."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers import GENERAL_ROWS
from twinsft.config import ExportSpec, ModelSpec
from twinsft.data.alpaca import ALPACA
from twinsft.export import export_merged
from twinsft.export.merge import PROBE_TOKENS, ExportMismatch, cast_weights, check_reload, probe_ids
from twinsft.generation.greedy import greedy_ids, load_adapted


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


def held_out_ids(tokenizer):
    text = ALPACA.training_text(GENERAL_ROWS[3]["instruction"], GENERAL_ROWS[3]["output"], tokenizer.eos_token)
    return tokenizer(text, return_tensors="pt").input_ids


def test_merge_matches_the_adapter_model_and_the_reloaded_copy_generates_the_same(tiny_model_dir, adapter_dir,
                                                                                    tmp_path):
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


def test_output_uri_gets_a_copy_and_a_scratch_folder_leaves_output_dir_alone(tiny_model_dir, adapter_dir, tmp_path):
    from twinsft import storage

    export = ExportSpec(output_dir=str(tmp_path / "client-outputs" / "merged"), output_uri=str(tmp_path / "bucket"))
    result = export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, export, into=tmp_path / "scratch")
    # Where the step runs elsewhere it merges into scratch: output_dir (the client's folder) is never written.
    assert result.local_dir is None and not (tmp_path / "client-outputs").exists()
    assert result.output_uri == str(tmp_path / "bucket")
    files = storage.list_files(str(tmp_path / "scratch"))
    assert "model.safetensors" in files and storage.list_files(str(tmp_path / "bucket")) == files
    for rel in files:
        assert (tmp_path / "bucket" / rel).read_bytes() == (tmp_path / "scratch" / rel).read_bytes()
