"""Gated Hub models: refuse before training when the download is bound to fail for want of a token.

Rule (offline, no Hub call): a Hub id from a gated family (`meta-llama/`, `google/gemma`) needs a
token, from HF_TOKEN or `hf auth login`, unless its config is already in the local Hugging Face cache.
"""

from __future__ import annotations

from pathlib import Path

from twinsft.config import ModelSpec
from twinsft.errors import ConfigError

GATED_PREFIXES = ("meta-llama/", "google/gemma")


def is_gated_family(name: str) -> bool:
    return name.lower().startswith(GATED_PREFIXES)


def check_gated_access(model: ModelSpec) -> None:
    if model.gguf_file or Path(model.name).expanduser().exists() or not is_gated_family(model.name):
        return
    from huggingface_hub import get_token, try_to_load_from_cache

    if get_token():
        return
    if isinstance(try_to_load_from_cache(model.name, "config.json", revision=model.revision), str):
        return
    raise ConfigError(
        f"model.name '{model.name}' is gated on the Hub and no token is set: accept its license at "
        f"https://huggingface.co/{model.name} and export HF_TOKEN, or point model.name at a local copy"
    )
