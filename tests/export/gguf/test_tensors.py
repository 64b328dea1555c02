"""How tensors are written: llama.cpp's Q/K row order, streamed in chunks, read from one or several shards."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from twinsft.export.gguf import permute_for_rope, tensors, write_gguf

pytestmark = pytest.mark.gguf


@pytest.mark.parametrize(("n_head", "n_kv_head"), [(4, 4), (4, 2), (9, 3)])
def test_rope_permutation_is_the_one_transformers_gguf_reader_undoes(n_head, n_kv_head):
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    head_dim, hidden = 8, 16
    q = np.random.default_rng(0).standard_normal((n_head * head_dim, hidden)).astype(np.float32)
    k = q[: n_kv_head * head_dim]
    undo = LlamaTensorProcessor({"num_attention_heads": n_head, "num_key_value_heads": n_kv_head})
    for name, weight, heads in (("blk.0.attn_q.weight", q, n_head), ("blk.0.attn_k.weight", k, n_kv_head)):
        written = permute_for_rope(weight, heads)
        assert not np.array_equal(written, weight)
        assert np.array_equal(undo.process(written, name).weights, weight)
        # Chunks of whole heads permute on their own (how large tensors are streamed).
        half = heads // 2 * head_dim if heads > 1 else weight.shape[0]
        parts = [permute_for_rope(weight[:half], half // head_dim)]
        if half < weight.shape[0]:
            parts.append(permute_for_rope(weight[half:], (weight.shape[0] - half) // head_dim))
        assert np.array_equal(np.concatenate(parts), written)


def test_tensors_are_streamed_in_chunks_with_the_same_result(tiny_copy, tmp_path, monkeypatch):
    """A chunk far smaller than any tensor writes the same bytes as whole tensors at once."""
    whole = tmp_path / "whole.gguf"
    write_gguf(tiny_copy, whole, "q8_0", "t")
    monkeypatch.setattr(tensors, "CHUNK_ELEMENTS", 64)
    chunked = tmp_path / "chunked.gguf"
    write_gguf(tiny_copy, chunked, "q8_0", "t")
    assert whole.read_bytes() == chunked.read_bytes()


def test_a_sharded_save_writes_the_same_file(tiny_copy, tmp_path):
    """Large merged models are saved in several safetensors files (with an index); each tensor is found in its own."""
    from transformers import AutoModelForCausalLM

    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_copy, sharded)
    for f in sharded.glob("model*.safetensors"):
        f.unlink()
    AutoModelForCausalLM.from_pretrained(tiny_copy).save_pretrained(sharded, max_shard_size="20KB")
    assert len(list(sharded.glob("model-*.safetensors"))) > 1 and (sharded / "model.safetensors.index.json").is_file()
    write_gguf(tiny_copy, tmp_path / "one.gguf", "f16", "t")
    write_gguf(sharded, tmp_path / "many.gguf", "f16", "t")
    assert (tmp_path / "one.gguf").read_bytes() == (tmp_path / "many.gguf").read_bytes()
