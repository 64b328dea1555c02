"""Packed rows through one attention call: same loss as one sample at a time.

The kernels that run on the GPU (torch's flash varlen, compiled flex attention) do not run here;
what does: flex attention's eager path through transformers' own flex integration, and the GQA
adapter handed to Unsloth's dispatcher, around a per-sample reference kernel.
"""

import math
import types

import pytest
import torch
import torch.nn.functional as F

from twinsft.training import packed_attention
from twinsft.training.packed_attention import enable_unsloth_varlen, gqa_varlen, trl_attn_implementation

LENGTHS = [7, 19, 3, 12, 25]  # samples of one packed row; 31 tokens and more in one row would do the same


def _packed_batch(tok, texts):
    """What the trainer's padding-free collator makes of bfd-packed samples: one row, restarting positions."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    ids = [tok(t)["input_ids"] for t in texts]
    collator = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)
    packed = {"input_ids": [i for s in ids for i in s], "seq_lengths": [len(s) for s in ids]}
    return ids, collator([packed])


def _eager_flex(monkeypatch):
    """transformers' flex path with its kernel and block mask run eagerly (inductor would compile C++ here)."""
    import transformers.integrations.flex_attention as hf_flex
    import transformers.masking_utils as masking
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    def eager(query, key, value, training=False, **kwargs):
        return flex_attention(query, key, value, **kwargs)

    def block_mask(*args, **kwargs):
        return create_block_mask(*args, **{**kwargs, "_compile": False})

    monkeypatch.setattr(hf_flex, "compile_friendly_flex_attention", eager)
    monkeypatch.setattr(masking, "create_block_mask", block_mask)


@pytest.mark.parametrize("attn", ["flex_attention", "sdpa"])
def test_packed_loss_equals_per_sample_loss(tiny_model_dir, monkeypatch, attn):
    """One packed row of five samples: the loss (and for SDPA the gradient) as when each sample is its own batch."""
    from transformers import AutoTokenizer

    from twinsft.config import ModelSpec
    from twinsft.models import load_model

    if attn == "flex_attention":
        _eager_flex(monkeypatch)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = load_model(ModelSpec(name=str(tiny_model_dir)), dtype=torch.float32, attn_implementation=attn)
    assert model.config._attn_implementation == attn
    texts = [" ".join(["word"] * n) + f" sample {i}." for i, n in enumerate(LENGTHS)]
    ids, batch = _packed_batch(tok, texts)
    assert batch["input_ids"].shape[0] == 1 and (batch["position_ids"][0] == 0).sum() == len(texts)

    # Flex attention has no backward on a CPU: there the losses alone are compared.
    grad = attn == "sdpa"
    weight = model.model.layers[0].self_attn.q_proj.weight
    with torch.set_grad_enabled(grad):
        packed = model(**batch, use_cache=False).loss
        sums, grads, count = 0.0, 0.0, 0
        # Per sample: the collator drops each sample's first label (no previous token); so does a single row.
        for s in ids:
            row = torch.tensor([s])
            loss = model(input_ids=row, labels=row, use_cache=False).loss
            if grad:
                grads = grads + torch.autograd.grad(loss * (len(s) - 1), weight)[0]
            sums, count = sums + loss.item() * (len(s) - 1), count + len(s) - 1
        assert packed.item() == pytest.approx(sums / count, abs=1e-4)
        if grad:
            torch.testing.assert_close(torch.autograd.grad(packed, weight)[0], grads / count, atol=1e-4, rtol=1e-3)

    if attn == "flex_attention":  # the benchmark's comparison path: SDPA inside the block, flex again after
        from peft import LoraConfig, get_peft_model

        from twinsft.training.packed_attention import per_segment_attention

        peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
        with torch.no_grad(), per_segment_attention("trl", peft_model):
            assert model.config._attn_implementation == "sdpa"
            assert peft_model(**batch, use_cache=False).loss.item() == pytest.approx(packed.item(), abs=1e-4)
        assert model.config._attn_implementation == "flex_attention"

    # The same row with positions running on: samples see each other, and the loss moves. So the
    # comparison above can fail.
    with torch.no_grad():
        crossed = model(input_ids=batch["input_ids"], labels=batch["labels"], use_cache=False).loss
    assert abs(crossed.item() - packed.item()) > 1e-3


def _per_sample_varlen(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, scale=None,
                       window_size=(-1, -1), **kwargs):
    """A reference varlen kernel (equal head counts only, like torch 2.11's): one causal SDPA per sample."""
    assert query.shape[-2] == key.shape[-2], "the adapter must hand the kernel equal head counts"
    assert tuple(window_size) == (-1, 0) and cu_seq_q is cu_seq_k and not kwargs
    outs = []
    for a, b in zip(cu_seq_q[:-1].tolist(), cu_seq_q[1:].tolist(), strict=True):
        q, k, v = (x[a:b].transpose(0, 1) for x in (query, key, value))
        outs.append(F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale).transpose(0, 1))
    return torch.cat(outs)


def test_gqa_adapter_matches_grouped_attention():
    """8 query heads over 2 KV heads: each KV head serves 4 neighbouring query heads, as SDPA's enable_gqa."""
    torch.manual_seed(0)
    lengths = [5, 9, 2]
    total, heads, kv_heads, dim = sum(lengths), 8, 2, 16
    q = torch.randn(total, heads, dim, requires_grad=True)
    k = torch.randn(total, kv_heads, dim, requires_grad=True)
    v = torch.randn(total, kv_heads, dim, requires_grad=True)
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    attn = gqa_varlen(_per_sample_varlen)
    out = attn(q, k, v, cu, cu, max(lengths), max(lengths), scale=1 / math.sqrt(dim), window_size=(-1, 0),
               enable_gqa=True)
    expected = []
    for a, b in zip(cu[:-1].tolist(), cu[1:].tolist(), strict=True):
        qs, ks, vs = (x[a:b].transpose(0, 1)[None] for x in (q, k, v))
        expected.append(F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, enable_gqa=True)[0].transpose(0, 1))
    expected = torch.cat(expected)
    torch.testing.assert_close(out, expected)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    expected_grads = torch.autograd.grad(expected.square().sum(), (q, k, v))
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="enable_gqa"):
        attn(q, k, v, cu, cu, 9, 9, window_size=(-1, 0))


def _dispatch(varlen=None):
    """The two globals of unsloth.utils.attention_dispatch the adapter sets, and its xformers rule."""
    return types.SimpleNamespace(
        _TORCH_VARLEN_ATTN=varlen, _NATIVE_BEATS_XFORMERS=False,
        _visible_capabilities=lambda: [(9, 0)],
        _native_beats_xformers=lambda caps, loaded: loaded and all(c[0] >= 8 for c in caps))


def test_unsloth_dispatcher_gets_the_adapter_only_where_it_has_no_varlen(monkeypatch):
    monkeypatch.delenv("UNSLOTH_TORCH_VARLEN", raising=False)
    monkeypatch.setattr(packed_attention, "_torch_varlen", lambda: (_per_sample_varlen, ""))

    own = _dispatch(varlen=print)  # torch 2.12+: Unsloth found varlen_attn with enable_gqa itself
    assert enable_unsloth_varlen(own) == "torch varlen_attn (Unsloth's own)"
    assert own._TORCH_VARLEN_ATTN is print and own._NATIVE_BEATS_XFORMERS is False

    old = _dispatch()  # torch 2.11: Unsloth found none
    assert enable_unsloth_varlen(old) == "torch varlen_attn (twinsft GQA adapter)"
    adapter = old._TORCH_VARLEN_ATTN
    assert adapter.twinsft_adapter and old._NATIVE_BEATS_XFORMERS is True
    assert enable_unsloth_varlen(old) == "torch varlen_attn (twinsft GQA adapter)"
    assert old._TORCH_VARLEN_ATTN is adapter  # idempotent

    monkeypatch.setenv("UNSLOTH_TORCH_VARLEN", "0")  # Unsloth's own off switch stays off
    assert enable_unsloth_varlen(_dispatch()).endswith("(UNSLOTH_TORCH_VARLEN is off)")

    monkeypatch.delenv("UNSLOTH_TORCH_VARLEN")
    monkeypatch.setattr(packed_attention, "_torch_varlen", lambda: (None, "this torch has no varlen"))
    untouched = _dispatch()
    assert enable_unsloth_varlen(untouched) == "one SDPA call per sample (this torch has no varlen)"
    assert untouched._TORCH_VARLEN_ATTN is None


def test_trl_attention_follows_packing_and_device(monkeypatch):
    monkeypatch.setattr(packed_attention, "cuda_available", lambda: True)
    assert trl_attn_implementation(packing=True) == "flex_attention"
    assert trl_attn_implementation(packing=False) == "sdpa"
    monkeypatch.setattr(packed_attention, "cuda_available", lambda: False)
    assert trl_attn_implementation(packing=True) == "sdpa"
