"""Merge the adapter into 16-bit weights, save locally (always), push to the Hub (when asked)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

from twinsft.config import ExportSpec, ModelSpec
from twinsft.errors import ConfigError
from twinsft.models import load_model
from twinsft.prompts import ALPACA
from twinsft.runtime import cuda_available, export_dtype


class ExportResult(BaseModel):
    local_dir: str
    dtype: str
    pushed: bool = False
    repo_id: str | None = None
    repo_url: str | None = None


def merge_to_dir(model: ModelSpec, adapter_dir: Path, output_dir: Path) -> str:
    """Merge LoRA into the base model in 16-bit and save model + tokenizer; returns the dtype used.

    A QLoRA run still merges into a 16-bit base (never into 4-bit weights, which would lose the
    fine-tune to re-quantization). The tokenizer gets the Alpaca chat template so serving uses the
    prompt the model was trained on.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    dtype = export_dtype()
    # On a CPU, merge in fp32 and cast afterwards: bf16 matmuls there are slow and less exact.
    work_dtype = dtype if cuda_available() else torch.float32
    base = load_model(model, dtype=work_dtype, device_map={"": 0} if cuda_available() else None)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload().to(dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    tokenizer.chat_template = ALPACA.chat_template()
    # Serving stacks read these from the model files: make them agree with the trained tokenizer.
    merged.config.pad_token_id = tokenizer.pad_token_id
    merged.config.eos_token_id = tokenizer.eos_token_id
    if merged.generation_config is not None:
        merged.generation_config.pad_token_id = tokenizer.pad_token_id
        merged.generation_config.eos_token_id = tokenizer.eos_token_id

    output_dir = output_dir.expanduser().resolve()
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}-"))
    try:
        merged.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if output_dir.exists():
            shutil.rmtree(output_dir)
        tmp.rename(output_dir)  # a crash mid-save never leaves a half-written model at output_dir
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(dtype).removeprefix("torch.")


def hub_token() -> str:
    """HF_TOKEN from the environment (or a ZenML secret exported into the step's environment)."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise ConfigError("export.push is on but HF_TOKEN is not set; export HF_TOKEN or set push: false")
    return token


def push_dir(local_dir: Path, export: ExportSpec, commit_message: str) -> str:
    """Upload a saved model folder to export.repo_id."""
    from huggingface_hub import HfApi

    assert export.repo_id
    api = HfApi(token=hub_token())
    api.create_repo(export.repo_id, private=export.private, exist_ok=True, repo_type="model")
    api.upload_folder(folder_path=str(local_dir), repo_id=export.repo_id, commit_message=commit_message)
    return f"https://huggingface.co/{export.repo_id}"


def export_merged(model: ModelSpec, adapter_dir: Path, export: ExportSpec, run_name: str = "") -> ExportResult:
    local = Path(export.output_dir)
    dtype = merge_to_dir(model, adapter_dir, local)
    result = ExportResult(local_dir=str(local.expanduser().resolve()), dtype=dtype)
    if export.push:
        url = push_dir(local, export, commit_message=f"twinsft: merged 16-bit model from run {run_name}".strip())
        result = result.model_copy(update={"pushed": True, "repo_id": export.repo_id, "repo_url": url})
    return result
