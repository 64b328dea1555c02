"""GGUF files of the merged model for llama.cpp and Ollama, written tensor by tensor and verified before they are kept.

`export_gguf` writes `<name>-f16.gguf` and/or `<name>-q8_0.gguf` plus an Ollama `Modelfile` into a temporary
folder next to the saved merged model, reloads every file with transformers' GGUF reader and compares it with the
merged model (f16: logits and greedy tokens; q8_0: greedy tokens, a mismatch is a warning), and only then moves
the folder into place as `<model_dir>/gguf/`.

Only Llama-architecture models with a byte-level BPE tokenizer (Llama 3, SmolLM2) are written; anything else
stops with one line naming what is not supported.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from twinsft.errors import UserError
from twinsft.export.merge import PROBE_TOKENS, ExportMismatch, logits, probe_ids
from twinsft.generation.greedy import greedy_ids
from twinsft.prompts import ALPACA
from twinsft.runtime import device_map

GGUF_DIR = "gguf"  # inside the merged model folder: uploaded with it, ignored by from_pretrained(model_dir)
MODELFILE = "Modelfile"
# Values converted at a time; bounds the float32 scratch copy of a tensor at 64 MiB.
CHUNK_ELEMENTS = 1 << 24
# f16 holds every bf16 weight of magnitude 6.1e-5 .. 65504 exactly (8 mantissa bits fit in 10); only smaller
# ones round, by at most 3e-8 each (f16's subnormal step). So the f16 file computes the same function as the
# bf16 merged model up to float32 summation noise; 1e-3 leaves room for that and catches any real defect (a
# wrong permutation or a corrupted tensor moves logits by whole units).
F16_MAX_LOGIT_DIFF = 1e-3
# The pre-tokenizer of Llama 3 tokenizers (tokenizer.json: Split with this regex, then ByteLevel without regex).
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
ROPE_TYPES = ("default", "llama3")


class GGUFUnsupported(UserError):
    """The merged model cannot be written as a GGUF file by this exporter (the message says what and the fix)."""


class GGUFMismatch(ExportMismatch):
    """A written GGUF file does not reproduce the merged model: nothing is kept."""


class GGUFCheck(BaseModel):
    """One verified GGUF file."""

    quantization: str
    path: str
    size_bytes: int
    max_logit_diff: float  # against the merged model, both computing in float32 on the probe prompt
    greedy_match: bool  # the first PROBE_TOKENS greedy tokens equal the merged model's
    first_mismatch: int | None = None  # index of the first differing greedy token


class GGUFExport(BaseModel):
    dir: str
    modelfile: str
    files: dict[str, GGUFCheck]
    verified_tokens: int
    warnings: list[str] = []


# --- what goes into the file -------------------------------------------------------------------------------------


def unsupported(what: str) -> GGUFUnsupported:
    return GGUFUnsupported(
        f"export.gguf: {what}; this exporter writes Llama models with a byte-level BPE tokenizer. Set export.gguf: [] "
        "(the merged model is saved either way) and convert it with llama.cpp's convert_hf_to_gguf.py"
    )


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


@dataclass(frozen=True)
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str
    bos: int | None
    eos: int | None
    pad: int | None
    unk: int | None
    add_bos: bool
    add_eos: bool


def pre_tokenizer_type(pre: dict | None, normalizer: dict | None) -> str:
    """llama.cpp's `tokenizer.ggml.pre` for the split rules in tokenizer.json (llama.cpp has no normalizers)."""
    if normalizer and not (normalizer.get("type") == "Sequence" and not normalizer.get("normalizers")):
        raise unsupported(f"the tokenizer has a normalizer ({normalizer.get('type')})")
    steps = (pre or {}).get("pretokenizers") if (pre or {}).get("type") == "Sequence" else [pre or {}]
    kinds = [s.get("type") for s in steps]
    last = steps[-1]
    if kinds[-1:] == ["ByteLevel"] and not last.get("add_prefix_space", False):
        regex = last.get("use_regex", True)
        if kinds == ["ByteLevel"] and regex:
            return "gpt-2"
        if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and regex:
            return "smollm"  # each digit alone, then GPT-2's split
        if kinds == ["Split", "ByteLevel"] and steps[0].get("pattern", {}).get("Regex") == LLAMA3_SPLIT and not regex:
            return "llama-bpe"
    raise unsupported(f"the tokenizer's pre-tokenizer {kinds} is not one llama.cpp splits the same way")


def special_flags(tokenizer: Any) -> tuple[bool, bool]:
    """Whether encoding adds BOS / EOS, as observed on the tokenizer training used."""
    bare = tokenizer("a", add_special_tokens=False).input_ids
    full = tokenizer("a").input_ids
    add_bos = tokenizer.bos_token_id is not None and full[:1] == [tokenizer.bos_token_id] != bare[:1]
    add_eos = tokenizer.eos_token_id is not None and full[-1:] == [tokenizer.eos_token_id] != bare[-1:]
    return add_bos, add_eos


def read_vocab(model_dir: Path, n_vocab: int) -> Vocab:
    """The BPE vocabulary, merges and special tokens from the saved tokenizer.json, padded to the embedding rows."""
    from gguf import TokenType
    from transformers import AutoTokenizer

    data = json.loads((model_dir / "tokenizer.json").read_text())
    model = data["model"]
    if model.get("type") != "BPE":
        raise unsupported(f"the tokenizer is {model.get('type')}, not BPE")
    pre = pre_tokenizer_type(data.get("pre_tokenizer"), data.get("normalizer"))
    if model.get("ignore_merges") and pre != "llama-bpe":  # llama.cpp looks words up whole only for llama-bpe
        raise unsupported(f"the tokenizer skips merges for whole-word tokens, which llama.cpp's '{pre}' does not")
    added = {t["id"]: t for t in data.get("added_tokens", [])}
    by_id = {i: token for token, i in model["vocab"].items()} | {i: t["content"] for i, t in added.items()}
    if max(by_id) >= n_vocab:
        raise unsupported(f"the tokenizer has token id {max(by_id)} but the model only {n_vocab} embeddings")
    tokens, types = [], []
    for i in range(n_vocab):  # rows the tokenizer never produces get llama.cpp's unused placeholders
        tokens.append(by_id.get(i, f"[PAD{i}]"))
        if i not in by_id:
            types.append(TokenType.UNUSED)
        elif i in added:
            types.append(TokenType.CONTROL if added[i].get("special") else TokenType.USER_DEFINED)
        else:
            types.append(TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    add_bos, add_eos = special_flags(tokenizer)
    return Vocab(tokens, [int(t) for t in types], merges, pre, tokenizer.bos_token_id, tokenizer.eos_token_id,
                 tokenizer.pad_token_id, tokenizer.unk_token_id, add_bos, add_eos)


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
        size = _encoded_nbytes(t)
        writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), size, raw_dtype=t.qtype)
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


def _encoded_nbytes(tensor: PlannedTensor) -> int:
    from gguf import GGML_QUANT_SIZES

    block, size = GGML_QUANT_SIZES[tensor.qtype]
    n = 1
    for d in tensor.shape:
        n *= d
    return n // block * size


def render_modelfile(gguf_file: str, eos_token: str) -> str:
    """An Ollama Modelfile: the GGUF file next to it, the training prompt as the template, stop at EOS.

    Ollama's Go template fills `{{ .Prompt }}` with the user's message, so the rendered prompt is exactly
    `ALPACA.prompt(message)`; the template is raw text between triple quotes.
    """
    template = ALPACA.prompt("{{ .Prompt }}")
    assert '"""' not in template and template.count("{{") == 1, "the Alpaca preamble must stay plain text"
    stop = json.dumps(eos_token, ensure_ascii=False)
    return f'FROM ./{gguf_file}\nTEMPLATE """{template}"""\nPARAMETER stop {stop}\n'


# --- verification ------------------------------------------------------------------------------------------------


@dataclass
class Reference:
    tokenizer: Any
    ids: Any
    logits: Any
    tokens: list[int]


def merged_reference(model_dir: Path) -> Reference:
    """The merged model's float32 logits and greedy tokens on the export's probe prompt; the model is then freed."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, device_map=device_map())
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = probe_ids(tokenizer, model.device)
    ref = Reference(tokenizer, ids.cpu(), logits(model, ids).cpu(), greedy_ids(model, tokenizer, ids, PROBE_TOKENS))
    del model
    return ref


def load_gguf_model(path: Path) -> Any:
    """The GGUF file as transformers reads it (dequantized to float32), rotating as llama.cpp would.

    transformers' reader ignores llama.cpp's `rope_freqs` tensor, so apply it here the way llama.cpp does
    (each frequency divided by its factor); without it a llama3-RoPE file would be compared unscaled.
    """
    import torch
    from gguf import GGUFReader
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                 device_map=device_map())
    freqs = [t for t in GGUFReader(path).tensors if t.name == "rope_freqs.weight"]
    if freqs:
        rotary = model.model.rotary_emb
        factors = torch.as_tensor(freqs[0].data.copy(), dtype=torch.float32, device=rotary.inv_freq.device)
        rotary.inv_freq = rotary.original_inv_freq = rotary.original_inv_freq / factors
    return model.eval()


def first_mismatch(want: list[int], got: list[int]) -> int | None:
    for i, (a, b) in enumerate(zip(want, got, strict=False)):
        if a != b:
            return i
    return None if len(want) == len(got) else min(len(want), len(got))


def check_file(path: Path, quantization: str, ref: Reference) -> GGUFCheck:
    model = load_gguf_model(path)
    ids = ref.ids.to(model.device)
    diff = float((logits(model, ids).cpu() - ref.logits).abs().max())
    tokens = greedy_ids(model, ref.tokenizer, ids, PROBE_TOKENS)
    del model
    mismatch = first_mismatch(ref.tokens, tokens)
    return GGUFCheck(quantization=quantization, path=str(path), size_bytes=path.stat().st_size,
                     max_logit_diff=diff, greedy_match=mismatch is None, first_mismatch=mismatch)


def check_metadata(path: Path, vocab: Vocab) -> None:
    """The tokenizer and chat template read back from the file are the ones written (no loss in serialization)."""
    from gguf import GGUFReader

    fields = GGUFReader(path).fields
    found = {
        "tokens": fields["tokenizer.ggml.tokens"].contents(),
        "merges": fields["tokenizer.ggml.merges"].contents() if vocab.merges else [],
        "eos": fields["tokenizer.ggml.eos_token_id"].contents() if vocab.eos is not None else None,
        "chat_template": fields["tokenizer.chat_template"].contents(),
    }
    want = {"tokens": vocab.tokens, "merges": vocab.merges, "eos": vocab.eos, "chat_template": ALPACA.chat_template()}
    wrong = [k for k in want if found[k] != want[k]]
    if wrong:
        raise GGUFMismatch(f"the GGUF file {path.name} reads back a different {', '.join(wrong)}; it was not kept")


def verify(model_dir: Path, paths: dict[str, Path], vocab: Vocab) -> tuple[dict[str, GGUFCheck], list[str], int]:
    """Each file against the merged model. f16 must match (else GGUFMismatch); q8_0 mismatches are warnings.

    Returns the checks, the warnings and how many greedy tokens were compared (fewer than PROBE_TOKENS when the
    merged model stops at EOS)."""
    ref = merged_reference(model_dir)
    checks, warnings = {}, []
    for quantization, path in paths.items():
        check_metadata(path, vocab)
        check = check_file(path, quantization, ref)
        if quantization == "f16" and (check.max_logit_diff > F16_MAX_LOGIT_DIFF or not check.greedy_match):
            raise GGUFMismatch(
                f"the f16 GGUF file differs from the merged model (max logit diff {check.max_logit_diff:.3g}, allowed "
                f"{F16_MAX_LOGIT_DIFF:g}; greedy tokens {'match' if check.greedy_match else 'differ'}); "
                "no GGUF file was kept"
            )
        if not check.greedy_match:
            warnings.append(
                f"{quantization} GGUF: greedy token {check.first_mismatch} of {len(ref.tokens)} on the probe prompt "
                f"differs from the merged model's (quantization error; max logit diff {check.max_logit_diff:.3g})"
            )
        checks[quantization] = check
    return checks, warnings, len(ref.tokens)


def export_gguf(model_dir: Path, quantizations: list[str], name: str) -> GGUFExport:
    """Write, verify, then move `<model_dir>/gguf/` into place (replacing an older one); nothing is kept on failure.

    The Modelfile's FROM names the first file in `quantizations`.
    """
    model_dir = model_dir.resolve()
    final = model_dir / GGUF_DIR
    # Next to the model folder, not inside it: a crash must never leave a half-written file that a push uploads.
    tmp = Path(tempfile.mkdtemp(dir=model_dir.parent, prefix=f".{model_dir.name}-gguf-"))
    try:
        vocab = read_vocab(model_dir, llama_config(model_dir).vocab_size)
        if vocab.eos is None:
            raise unsupported("the tokenizer has no EOS token to stop generation at")
        paths = {q: tmp / f"{name}-{q}.gguf" for q in quantizations}
        for quantization, path in paths.items():
            write_gguf(model_dir, path, quantization, name, vocab)
        checks, warnings, compared = verify(model_dir, paths, vocab)
        (tmp / MODELFILE).write_text(render_modelfile(paths[quantizations[0]].name, vocab.tokens[vocab.eos]))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = {q: c.model_copy(update={"path": str(final / Path(c.path).name)}) for q, c in checks.items()}
    return GGUFExport(dir=str(final), modelfile=str(final / MODELFILE), files=files,
                      verified_tokens=compared, warnings=warnings)
