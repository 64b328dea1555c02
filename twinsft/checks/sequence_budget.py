"""Does the Alpaca template plus a minimal sample fit in model.max_seq_length? Checked without torch.

The template's own tokens are counted exactly with the model's `tokenizer.json` when it is already on
disk (a local model directory or the Hugging Face cache), through the light `tokenizers` library.
Otherwise the bound is one token per UTF-8 byte, which no byte-level BPE or byte-fallback
SentencePiece tokenizer exceeds, so the check can refuse a tight but workable length, never pass a
length that cannot hold the template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twinsft.config import ModelSpec
from twinsft.data.alpaca import ALPACA
from twinsft.errors import ConfigError

# Room for the shortest useful instruction and response (BOS and EOS are counted separately).
MIN_CONTENT_TOKENS = 16
SPECIAL_TOKENS = 2  # BOS + EOS


def local_tokenizer_file(model: ModelSpec) -> Path | None:
    """`tokenizer.json` of a local model directory or a Hub model already in the HF cache, if any."""
    if model.gguf_file:
        return None  # the GGUF vocabulary needs transformers to read: use the byte bound
    local = Path(model.name).expanduser()
    if local.is_dir():
        candidate = local / "tokenizer.json"
        return candidate if candidate.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model.name, "tokenizer.json", revision=model.revision)
    return Path(cached) if isinstance(cached, str) else None


def local_tokenizer(model: ModelSpec) -> Any | None:
    """The model's `tokenizer.json` loaded with the light `tokenizers` library, when it is on disk and readable."""
    path = local_tokenizer_file(model)
    if path is None:
        return None
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception:  # an unusual tokenizer.json: callers fall back to what needs no tokenizer
        return None


def template_tokens(model: ModelSpec) -> tuple[int, bool]:
    """Tokens the empty Alpaca training text takes, and whether that count is exact."""
    text = ALPACA.training_text("", "", "")
    tokenizer = local_tokenizer(model)
    if tokenizer is not None:
        return len(tokenizer.encode(text, add_special_tokens=False).ids), True
    return len(text.encode("utf-8")) + 1, False  # +1: a SentencePiece leading-space marker


def min_seq_length(model: ModelSpec) -> tuple[int, bool]:
    tokens, exact = template_tokens(model)
    return tokens + SPECIAL_TOKENS + MIN_CONTENT_TOKENS, exact


def check_template_fits(model: ModelSpec) -> None:
    need, exact = min_seq_length(model)
    if model.max_seq_length < need:
        how = "with its tokenizer" if exact else "at most one token per byte, as its tokenizer is not on disk yet"
        raise ConfigError(
            f"model.max_seq_length {model.max_seq_length} is too short for the Alpaca template "
            f"({need - MIN_CONTENT_TOKENS} tokens counted {how}) plus {MIN_CONTENT_TOKENS} tokens of "
            f"instruction and response; raise it to at least {need}"
        )
