"""What a written GGUF file holds: the keys, vocabulary and tensors llama.cpp's own converter writes for the
demo model, and llama3 RoPE scaling as llama.cpp's `rope_freqs`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.export.gguf.helpers import field, reader
from tests.helpers import DEMO_MODEL, save_as_merged
from twinsft.data.alpaca import ALPACA
from twinsft.export.gguf import F16_MAX_LOGIT_DIFF, export_gguf
from twinsft.export.merge import logits, probe_ids

pytestmark = pytest.mark.gguf


def test_demo_gguf_has_what_the_shipped_smollm2_gguf_has(demo_gguf):
    """Hyperparameters, vocabulary, merges and tensor names as in the GGUF the demo model ships as."""
    from gguf import GGMLQuantizationType as Q

    from twinsft.models import gguf_path

    _, result = demo_gguf
    shipped = reader(gguf_path(DEMO_MODEL))
    for quantization, weight_type in (("f16", Q.F16), ("q8_0", Q.Q8_0)):
        ours = reader(Path(result.files[quantization].path))
        keys = [k for k in shipped.fields if k.startswith(("llama.", "tokenizer."))]
        assert set(keys) <= set(ours.fields)
        same = [k for k in keys if k.startswith("llama.")] + [
            "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
            "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix",
        ]
        for key in same:
            assert field(ours.fields, key) == field(shipped.fields, key), key
        # The training tokenizer is transformers' conversion of the shipped one, which splits with GPT-2's rule
        # (digits grouped), so the file says gpt-2 where the shipped file says smollm (digits one by one).
        assert field(ours.fields, "tokenizer.ggml.pre") == "gpt-2" and field(shipped.fields, "tokenizer.ggml.pre")
        assert field(ours.fields, "general.file_type") == {"f16": 1, "q8_0": 7}[quantization]
        assert field(ours.fields, "tokenizer.chat_template") == ALPACA.chat_template()
        assert {t.name for t in ours.tensors} == {t.name for t in shipped.tensors}  # tied: no output.weight
        for t in ours.tensors:
            want = Q.F32 if t.name.endswith("_norm.weight") else weight_type
            assert t.tensor_type == want, t.name


def llama3_factors(inv_freq: torch.Tensor, rope: dict) -> list[float]:
    """llama.cpp's convert_hf_to_gguf rope_freqs for llama3 RoPE, written out independently of the exporter."""
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = rope["original_max_position_embeddings"]
    out = []
    for freq in inv_freq.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return out


def test_llama3_rope_scaling_is_written_as_rope_freqs_and_reproduces_the_model(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    config = LlamaConfig.from_pretrained(tiny_model_dir)
    rope = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    config.rope_parameters = rope
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model_dir = save_as_merged(model, AutoTokenizer.from_pretrained(tiny_model_dir), tmp_path / "llama3-twin")
    result = export_gguf(model_dir, ["f16"], "llama3-twin")
    path = Path(result.files["f16"].path)
    assert result.files["f16"].max_logit_diff <= F16_MAX_LOGIT_DIFF and result.files["f16"].greedy_match

    freqs = next(t for t in reader(path).tensors if t.name == "rope_freqs.weight")
    head_dim = config.hidden_size // config.num_attention_heads
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    np.testing.assert_allclose(freqs.data, llama3_factors(inv_freq, rope), rtol=1e-6)
    assert len(set(freqs.data.tolist())) > 2  # unscaled, smoothed and fully scaled frequencies all occur
    # transformers' reader alone ignores rope_freqs: without applying them the file would not match.
    plain = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    merged = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ids = probe_ids(AutoTokenizer.from_pretrained(model_dir), "cpu")
    assert (logits(plain, ids) - logits(merged, ids)).abs().max() > 100 * F16_MAX_LOGIT_DIFF
