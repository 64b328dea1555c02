"""The vocabulary a GGUF file carries, read from a saved tokenizer.json: tokens and their types, BPE merges,
special tokens, and llama.cpp's name for the way the tokenizer splits text before merging."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twinsft.export.gguf.errors import unsupported

# The pre-tokenizer of Llama 3 tokenizers (tokenizer.json: Split with this regex, then ByteLevel without regex).
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)


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
