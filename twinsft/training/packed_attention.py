"""Packed rows at dense speed: one attention kernel call per layer for a row of many samples.

bfd packing is padding-free: a micro-batch reaches the model as one row whose `position_ids`
restart at every sample. Attention must stay inside each sample, and real instruction data
(a few hundred tokens per sample) puts dozens of samples in one micro-batch. One attention call
per sample costs ~8x a single varlen or document-masked kernel (18.8 ms against 2.2-2.8 ms
per layer on an H200 for 8 x 2048 tokens in 41 samples).

- Unsloth routes packed rows through torch's `varlen_attn` only when that function takes
  `enable_gqa` (torch 2.12+). torch 2.11's takes `window_size` (so causal varlen works) but not
  `enable_gqa`, and Unsloth falls back to one SDPA call per sample. `enable_unsloth_varlen` hands
  its dispatcher a `varlen_attn` that accepts `enable_gqa` by repeating the KV heads, which is what
  torch 2.12's does inside the flash kernel. Where Unsloth found a varlen kernel itself, nothing
  changes.
- TRL + PEFT run transformers' attention. With `flex_attention`, transformers builds one
  document-causal block mask per forward from the restarting `position_ids`, and one compiled
  flex kernel call per layer skips the blocks across samples. With `sdpa`, it builds a dense
  (T, T) mask, which leaves SDPA the memory-efficient kernel over the whole row.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from twinsft.runtime import cuda_available

log = logging.getLogger(__name__)

FLEX = "flex_attention"
SDPA = "sdpa"


def trl_attn_implementation(packing: bool) -> str:
    """transformers' attention for the TRL backend: flex attention for packed rows on CUDA, else SDPA.

    On a CPU, transformers' flex path compiles its kernel and block mask with inductor's C++
    backend: minutes on a small machine for no gain, so CPU runs (tests, the demo) keep SDPA, whose
    dense document mask is exact there too.
    """
    return FLEX if packing and cuda_available() else SDPA


def gqa_varlen(varlen_attn: Callable[..., Any]) -> Callable[..., Any]:
    """`varlen_attn` with torch 2.12's `enable_gqa`: fewer KV heads than query heads are repeated to match.

    Tensors are (tokens, heads, head_dim), the layout varlen_attn takes; each KV head serves a
    contiguous group of query heads, as in SDPA's enable_gqa (repeat_interleave, not repeat).
    """

    def varlen_attn_gqa(query: Any, key: Any, value: Any, cu_seq_q: Any, cu_seq_k: Any, max_q: int, max_k: int,
                        *, scale: float | None = None, window_size: tuple[int, int] = (-1, -1),
                        enable_gqa: bool = False, **kwargs: Any) -> Any:
        groups, rest = divmod(query.shape[-2], key.shape[-2])
        if groups != 1 or rest:
            if not enable_gqa or rest:
                raise ValueError(f"varlen attention: {query.shape[-2]} query heads and {key.shape[-2]} KV heads "
                                 "need enable_gqa=True and a whole number of query heads per KV head")
            key = key.repeat_interleave(groups, dim=-2)
            value = value.repeat_interleave(groups, dim=-2)
        return varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, scale=scale,
                           window_size=window_size, **kwargs)

    varlen_attn_gqa.twinsft_adapter = True  # type: ignore[attr-defined]
    return varlen_attn_gqa


def _torch_varlen() -> tuple[Callable[..., Any] | None, str]:
    """torch's varlen_attn when it can run causal packed rows here, else None and why not."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None, "this torch has no torch.nn.attention.varlen"
    if "window_size" not in inspect.signature(varlen_attn).parameters:
        return None, "this torch's varlen_attn takes no window_size (no causal varlen)"
    import torch

    if not getattr(torch.backends.cuda, "is_flash_attention_available", lambda: True)():
        return None, "this torch build has no flash attention"
    return varlen_attn, ""


def enable_unsloth_varlen(dispatch: Any = None) -> str:
    """Give Unsloth's attention dispatcher a varlen kernel where it found none; say which path packed rows take.

    `dispatch` is `unsloth.utils.attention_dispatch` (passed in by tests). It reads two module
    globals at call time: `_TORCH_VARLEN_ATTN` (the kernel; None means one SDPA call per sample) and
    `_NATIVE_BEATS_XFORMERS` (whether packed rows prefer torch's kernels to xformers, decided at
    import from whether a varlen kernel exists). Both are set as Unsloth sets them on torch 2.12+.
    Unsloth's own switch `UNSLOTH_TORCH_VARLEN=0` is honoured. Idempotent.
    """
    if dispatch is None:
        from unsloth.utils import attention_dispatch as dispatch
    current = getattr(dispatch, "_TORCH_VARLEN_ATTN", None)
    if current is not None:
        return "torch varlen_attn (twinsft GQA adapter)" if getattr(current, "twinsft_adapter", False) \
            else "torch varlen_attn (Unsloth's own)"
    if not hasattr(dispatch, "_TORCH_VARLEN_ATTN"):
        return "Unsloth's default (this Unsloth has no torch varlen dispatch)"
    if os.environ.get("UNSLOTH_TORCH_VARLEN", "1").lower() in ("0", "false", "no", "off"):
        return "one SDPA call per sample (UNSLOTH_TORCH_VARLEN is off)"
    varlen_attn, why_not = _torch_varlen()
    if varlen_attn is None:
        return f"one SDPA call per sample ({why_not})"
    dispatch._TORCH_VARLEN_ATTN = gqa_varlen(varlen_attn)
    if hasattr(dispatch, "_native_beats_xformers") and hasattr(dispatch, "_visible_capabilities"):
        dispatch._NATIVE_BEATS_XFORMERS = dispatch._native_beats_xformers(dispatch._visible_capabilities(), True)
    log.info("packed rows: Unsloth now calls torch's varlen_attn through twinsft's GQA adapter (torch %s's "
             "varlen_attn takes no enable_gqa)", _torch_version())
    return "torch varlen_attn (twinsft GQA adapter)"


def _torch_version() -> str:
    import torch

    return torch.__version__


def attention_path(backend: str, model: Any) -> str:
    """Which attention packed rows take, for logs and benchmark rows (installs Unsloth's varlen adapter)."""
    if backend == "unsloth":
        return enable_unsloth_varlen()
    return getattr(model.config, "_attn_implementation", None) or "unknown"


@contextlib.contextmanager
def per_segment_attention(backend: str, model: Any) -> Iterator[None]:
    """Within the block, packed rows take the slower paths this module replaces (to compare losses).

    Unsloth: no varlen kernel, so one SDPA call per sample. TRL + PEFT: SDPA with transformers'
    dense document mask.
    """
    if backend == "unsloth":
        from unsloth.utils import attention_dispatch as dispatch

        saved = {name: getattr(dispatch, name) for name in ("_TORCH_VARLEN_ATTN", "_NATIVE_BEATS_XFORMERS")
                 if hasattr(dispatch, name)}
        # As imported on torch 2.11: no varlen kernel, and so xformers (if it runs) before per-sample SDPA.
        for name in saved:
            setattr(dispatch, name, None if name == "_TORCH_VARLEN_ATTN" else False)
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(dispatch, name, value)
        return
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    before = base.config._attn_implementation
    base.set_attn_implementation(SDPA)
    try:
        yield
    finally:
        base.set_attn_implementation(before)
