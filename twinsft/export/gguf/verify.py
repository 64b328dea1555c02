"""Check a GGUF file against the Hugging Face checkpoint it should reproduce, whoever wrote the file.

Everything expected comes from the checkpoint and everything found from the file: its own metadata says its
file type, vocabulary, EOS and chat template, and transformers' GGUF reader loads its weights. The file's
float32 logits and greedy tokens on the export's probe prompt are compared with the checkpoint's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from twinsft.export.gguf.errors import GGUFMismatch
from twinsft.export.gguf.vocab import read_vocab
from twinsft.export.merge import PROBE_TOKENS, logits, probe_ids
from twinsft.generation.greedy import greedy_ids
from twinsft.runtime import device_map

# f16 holds every bf16 weight of magnitude 6.1e-5 .. 65504 exactly (8 mantissa bits fit in 10); only smaller
# ones round, by at most 3e-8 each (f16's subnormal step). So the f16 file computes the same function as the
# bf16 merged model up to float32 summation noise; 1e-3 leaves room for that and catches any real defect (a
# wrong permutation or a corrupted tensor moves logits by whole units).
F16_MAX_LOGIT_DIFF = 1e-3
# File types bound by F16_MAX_LOGIT_DIFF: f32 and bf16 hold a bf16 checkpoint's weights exactly, f16 up to the
# rounding above. Quantized types round every weight by design, so no logit bound follows from their type:
# for them only the greedy tokens are compared, and a difference is a warning.
EXACT_FILE_TYPES = ("f32", "bf16", "f16")


class GGUFCheck(BaseModel):
    """One verified GGUF file."""

    quantization: str  # the file type its metadata names (general.file_type): f16, q8_0, q4_1, ...
    path: str
    size_bytes: int
    max_logit_diff: float  # against the merged model, both computing in float32 on the probe prompt
    greedy_match: bool  # the first PROBE_TOKENS greedy tokens equal the merged model's
    first_mismatch: int | None = None  # index of the first differing greedy token


@dataclass
class Verification:
    checks: list[GGUFCheck]  # one a file, in the order given
    warnings: list[str] = field(default_factory=list)
    verified_tokens: int = 0  # greedy tokens compared: fewer than PROBE_TOKENS when the checkpoint stops at EOS


@dataclass
class Reference:
    """The checkpoint's float32 logits and greedy tokens on the probe prompt."""

    tokenizer: Any
    ids: Any
    logits: Any
    tokens: list[int]


def file_type_name(value: int | None) -> str:
    """llama.cpp's file type as the export names quantizations: 1 -> f16, 7 -> q8_0, 3 -> q4_1."""
    from gguf import LlamaFileType

    if value is None:
        return "unknown"
    try:
        name = LlamaFileType(value).name
    except ValueError:
        return f"file type {value}"
    return "f32" if name == "ALL_F32" else name.removeprefix("MOSTLY_").lower()


def file_metadata(path: Path) -> dict[str, Any]:
    """What the file says about itself: file type, tokens, merges, EOS id and chat template (None: absent)."""
    from gguf import GGUFReader

    fields = GGUFReader(path).fields

    def value(key: str) -> Any:
        return fields[key].contents() if key in fields else None

    return {"file_type": file_type_name(value("general.file_type")), "tokens": value("tokenizer.ggml.tokens"),
            "merges": value("tokenizer.ggml.merges") or [], "eos": value("tokenizer.ggml.eos_token_id"),
            "chat_template": value("tokenizer.chat_template")}


def expected_metadata(model_dir: Path) -> dict[str, Any]:
    """The tokens, merges and EOS a file of this checkpoint must carry (as a GGUF vocabulary pads them to the
    embedding rows), and its tokenizer's chat template."""
    from transformers import AutoConfig, AutoTokenizer

    vocab = read_vocab(model_dir, AutoConfig.from_pretrained(model_dir).vocab_size)
    return {"tokens": vocab.tokens, "merges": vocab.merges, "eos": vocab.eos,
            "chat_template": AutoTokenizer.from_pretrained(model_dir).chat_template}


def check_metadata(path: Path, expected: dict[str, Any]) -> str:
    """The file's tokenizer and chat template are the checkpoint's (else GGUFMismatch); returns its file type."""
    found = file_metadata(path)
    wrong = [k for k in expected if found[k] != expected[k]]
    if wrong:
        raise GGUFMismatch(f"the GGUF file {path.name} carries a different {', '.join(wrong)} from the merged "
                           "model's tokenizer")
    return found["file_type"]


def checkpoint_reference(model_dir: Path) -> Reference:
    """The checkpoint's float32 logits and greedy tokens on the export's probe prompt; the model is then freed."""
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
    """The file's logits and greedy tokens against the reference's, recorded as they are (no verdict)."""
    model = load_gguf_model(path)
    ids = ref.ids.to(model.device)
    diff = float((logits(model, ids).cpu() - ref.logits).abs().max())
    tokens = greedy_ids(model, ref.tokenizer, ids, PROBE_TOKENS)
    del model
    mismatch = first_mismatch(ref.tokens, tokens)
    return GGUFCheck(quantization=quantization, path=str(path), size_bytes=path.stat().st_size,
                     max_logit_diff=diff, greedy_match=mismatch is None, first_mismatch=mismatch)


def verify(model_dir: Path, paths: Iterable[Path]) -> Verification:
    """Each GGUF file against the checkpoint in `model_dir`.

    Every file's metadata is checked before any model is loaded. A file of an exact type (EXACT_FILE_TYPES) must
    match in logits and greedy tokens, else GGUFMismatch; a quantized file's greedy mismatch is a warning.
    """
    expected = expected_metadata(model_dir)
    file_types = {path: check_metadata(path, expected) for path in paths}
    ref = checkpoint_reference(model_dir)
    result = Verification(checks=[], verified_tokens=len(ref.tokens))
    for path, quantization in file_types.items():
        check = check_file(path, quantization, ref)
        if quantization in EXACT_FILE_TYPES and (check.max_logit_diff > F16_MAX_LOGIT_DIFF or not check.greedy_match):
            raise GGUFMismatch(
                f"the {quantization} GGUF file differs from the merged model (max logit diff "
                f"{check.max_logit_diff:.3g}, allowed {F16_MAX_LOGIT_DIFF:g}; greedy tokens "
                f"{'match' if check.greedy_match else 'differ'})"
            )
        if not check.greedy_match:
            result.warnings.append(
                f"{quantization} GGUF: greedy token {check.first_mismatch} of {len(ref.tokens)} on the probe prompt "
                f"differs from the merged model's (quantization error; max logit diff {check.max_logit_diff:.3g})"
            )
        result.checks.append(check)
    return result
