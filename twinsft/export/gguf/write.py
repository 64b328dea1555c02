"""Write one GGUF file of a saved Llama checkpoint: the config llama.cpp's LLAMA graph computes exactly, its
metadata keys, then every tensor streamed into the file one at a time."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from twinsft.data.alpaca import ALPACA
from twinsft.export.gguf.errors import unsupported
from twinsft.export.gguf.tensors import encode_tensor, encoded_nbytes, plan_tensors
from twinsft.export.gguf.vocab import Vocab, read_vocab

ROPE_TYPES = ("default", "llama3")


def llama_config(model_dir: Path) -> Any:
    """The merged model's config, refused unless llama.cpp's LLAMA graph computes exactly what transformers does."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    if config.model_type != "llama":
        raise unsupported(f"model type '{config.model_type}' is not llama")
    if config.hidden_act != "silu" or getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise unsupported("only SiLU MLPs without biases are written")
    rope = config.rope_parameters
    if rope.get("rope_type", "default") not in ROPE_TYPES or rope.get("partial_rotary_factor", 1.0) != 1.0:
        raise unsupported(f"RoPE {rope} is not one of {', '.join(ROPE_TYPES)} over the whole head")
    return config


def head_dim(config: Any) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def rope_factors(config: Any) -> Any:
    """llama.cpp's `rope_freqs` for llama3 RoPE: per frequency, what the scaling divides it by (None: no scaling).

    Taken from transformers' own llama3 frequencies, so the file rotates exactly as the merged model does.
    """
    import torch
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    if config.rope_parameters.get("rope_type", "default") != "llama3":
        return None
    dim = head_dim(config)
    base = 1.0 / (config.rope_parameters["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    scaled, _ = ROPE_INIT_FUNCTIONS["llama3"](config, None)
    return (base / scaled).numpy().astype("float32")


def add_metadata(writer: Any, config: Any, vocab: Vocab, quantization: str, name: str) -> None:
    """The keys llama.cpp's LLAMA loader reads (the same ones transformers' GGUF reader maps back to a config)."""
    from gguf import GGML_QUANT_VERSION, GGUFType, LlamaFileType

    writer.add_type(GGUFType.MODEL)
    writer.add_name(name)
    writer.add_vocab_size(len(vocab.tokens))
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads or config.num_attention_heads)
    writer.add_rope_dimension_count(head_dim(config))
    if head_dim(config) != config.hidden_size // config.num_attention_heads:
        writer.add_key_length(head_dim(config))
        writer.add_value_length(head_dim(config))
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    file_type = {"f16": LlamaFileType.MOSTLY_F16, "q8_0": LlamaFileType.MOSTLY_Q8_0}[quantization]
    writer.add_file_type(int(file_type))
    writer.add_quantization_version(GGML_QUANT_VERSION)

    writer.add_tokenizer_model("gpt2")  # llama.cpp's name for byte-level BPE; transformers reads it the same way
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    for token_id, add in ((vocab.bos, writer.add_bos_token_id), (vocab.eos, writer.add_eos_token_id),
                          (vocab.pad, writer.add_pad_token_id), (vocab.unk, writer.add_unk_token_id)):
        if token_id is not None:
            add(token_id)
    writer.add_add_space_prefix(False)  # every pre-tokenizer read_vocab accepts adds no leading space
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    writer.add_chat_template(ALPACA.chat_template())


def write_gguf(model_dir: Path, path: Path, quantization: str, name: str, vocab: Vocab | None = None) -> None:
    """Write one GGUF file of the saved merged model in `model_dir` (safetensors + config + tokenizer).

    Peak memory is one tensor, not the model: the writer gets every tensor's name, shape and type up front
    (`add_tensor_info`), writes header, metadata and tensor table, then each tensor's data in that order
    (`write_tensor_data`). A tensor is read from the memory-mapped safetensors in chunks of CHUNK_ELEMENTS values,
    converted to float32 (64 MiB at most), permuted / quantized into its output array, written and dropped. So
    the high-water mark is the largest tensor in its output type (the embedding: vocab x hidden x 2 bytes in
    f16, about 1 GiB for Llama-3.1-8B) plus one chunk, whatever the model's size.
    """
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter
    from safetensors import safe_open

    config = llama_config(model_dir)
    tensors = plan_tensors(model_dir, config, quantization)
    vocab = vocab or read_vocab(model_dir, config.vocab_size)
    factors = rope_factors(config)

    writer = GGUFWriter(path, "llama")
    add_metadata(writer, config, vocab, quantization, name)
    if factors is not None:
        writer.add_tensor_info("rope_freqs.weight", factors.shape, np.dtype(np.float32), factors.nbytes,
                               raw_dtype=GGMLQuantizationType.F32)
    for t in tensors:
        writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), encoded_nbytes(t), raw_dtype=t.qtype)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        if factors is not None:
            writer.write_tensor_data(factors)
        with ExitStack() as stack:
            shards = {t.shard for t in tensors}
            files = {s: stack.enter_context(safe_open(model_dir / s, framework="pt")) for s in shards}
            for t in tensors:
                data = encode_tensor(files[t.shard].get_slice(t.hf_name), t)
                writer.write_tensor_data(data)
                del data
    finally:
        writer.close()
