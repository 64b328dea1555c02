"""The tensors of a GGUF file: which safetensors tensor becomes which llama.cpp tensor in which type, and each
one's data, converted a chunk at a time from the memory-mapped safetensors."""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinsft.export.gguf.errors import unsupported

# Values converted at a time; bounds the float32 scratch copy of a tensor at 64 MiB.
CHUNK_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class PlannedTensor:
    hf_name: str
    shard: str  # the safetensors file that holds it
    name: str  # the GGUF name (llama.cpp's blk.N.attn_q.weight, ...)
    shape: tuple[int, ...]
    qtype: Any  # gguf.GGMLQuantizationType
    rope_heads: int = 0  # >0: rows are `rope_heads` heads that llama.cpp's Q/K layout reorders


def qtype_for(name: str, shape: tuple[int, ...], quantization: str) -> Any:
    """llama.cpp's choice: norms and other 1-D tensors stay f32; 2-D ones take the file's type, with f16 for a
    q8_0 file's tensors whose rows are not whole 32-value blocks."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    if len(shape) == 1 or name.endswith("_norm.weight"):
        return GGMLQuantizationType.F32
    if quantization == "q8_0" and shape[-1] % GGML_QUANT_SIZES[GGMLQuantizationType.Q8_0][0] == 0:
        return GGMLQuantizationType.Q8_0
    return GGMLQuantizationType.F16


def safetensors_shards(model_dir: Path) -> dict[str, str]:
    """Tensor name -> the safetensors file holding it, for a single-file or sharded save."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        return dict(json.loads(index.read_text())["weight_map"])
    from safetensors import safe_open

    with safe_open(model_dir / "model.safetensors", framework="pt") as f:
        return dict.fromkeys(f.keys(), "model.safetensors")


def plan_tensors(model_dir: Path, config: Any, quantization: str) -> list[PlannedTensor]:
    """Every tensor of the file, named and typed for MODEL_ARCH.LLAMA, in llama.cpp's order (by block)."""
    from gguf import MODEL_ARCH, get_tensor_name_map
    from safetensors import safe_open

    names = get_tensor_name_map(MODEL_ARCH.LLAMA, config.num_hidden_layers)
    shards = safetensors_shards(model_dir)
    tied = getattr(config, "tie_word_embeddings", False)
    n_kv = config.num_key_value_heads or config.num_attention_heads
    heads = {"attn_q": config.num_attention_heads, "attn_k": n_kv}
    planned = []
    with ExitStack() as stack:
        files = {s: stack.enter_context(safe_open(model_dir / s, framework="pt")) for s in set(shards.values())}
        for hf_name, shard in shards.items():
            if tied and hf_name == "lm_head.weight":
                continue  # llama.cpp reuses token_embd when the file has no output.weight
            name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise unsupported(f"tensor '{hf_name}' has no llama.cpp name")
            shape = tuple(files[shard].get_slice(hf_name).get_shape())
            role = name.split(".")[-2]
            planned.append(PlannedTensor(hf_name, shard, name, shape, qtype_for(name, shape, quantization),
                                         heads.get(role, 0)))

    if not tied and not any(t.name == "output.weight" for t in planned):
        raise unsupported("the model has untied output embeddings but no lm_head.weight")

    def order(t: PlannedTensor) -> tuple[int, str]:
        block = re.match(r"blk\.(\d+)\.", t.name)
        return (int(block.group(1)) if block else (-1 if t.name.startswith("token_embd") else 1 << 30), t.name)

    return sorted(planned, key=order)


def permute_for_rope(rows: Any, n_heads: int) -> Any:
    """llama.cpp's Q/K row order: within each head, interleave the two rotated halves.

    transformers rotates the first half of a head against the second (`rotate_half`); llama.cpp's LLAMA rope
    rotates adjacent pairs, so convert_hf_to_gguf reorders the rows of each head from (half, pair) to (pair,
    half). transformers' GGUF reader undoes it (`LlamaTensorProcessor._reverse_permute_weights`); a chunk of whole
    heads can be permuted on its own.
    """
    shape = rows.shape
    return rows.reshape(n_heads, 2, shape[0] // n_heads // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def encode_tensor(view: Any, tensor: PlannedTensor) -> Any:
    """One tensor in its GGUF type, read and converted CHUNK_ELEMENTS values at a time from a safetensors slice."""
    import numpy as np
    from gguf import GGMLQuantizationType, quant_shape_to_byte_shape, quantize

    rows = tensor.shape[0]
    per_row = int(np.prod(tensor.shape[1:], dtype=np.int64)) or 1
    step = max(1, CHUNK_ELEMENTS // per_row)
    if tensor.rope_heads:  # whole heads per chunk, so each chunk permutes on its own
        head_rows = rows // tensor.rope_heads
        step = max(head_rows, step // head_rows * head_rows)
    if tensor.qtype in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
        out = np.empty(tensor.shape, dtype=np.float32 if tensor.qtype == GGMLQuantizationType.F32 else np.float16)
    else:
        out = np.empty(quant_shape_to_byte_shape(tensor.shape, tensor.qtype), dtype=np.uint8)
    for start in range(0, rows, step):
        chunk = view[start:start + step].float().numpy()
        if tensor.rope_heads:
            chunk = permute_for_rope(chunk, chunk.shape[0] // head_rows)
        out[start:start + step] = quantize(chunk, tensor.qtype)
    if out.dtype == np.float16 and not np.isfinite(out).all():
        raise unsupported(f"tensor '{tensor.hf_name}' holds values beyond float16's range (65504)")
    return out


def encoded_nbytes(tensor: PlannedTensor) -> int:
    """The tensor's size in the file, which the header records before any data is written."""
    from gguf import GGML_QUANT_SIZES

    block, size = GGML_QUANT_SIZES[tensor.qtype]
    n = 1
    for d in tensor.shape:
        n *= d
    return n // block * size
