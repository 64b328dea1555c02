"""Merge the adapter into 16-bit weights, verify and save locally (always), push to the Hub (when asked)."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from twinsft.config import ExportSpec, ModelSpec
from twinsft.errors import ConfigError, UserError
from twinsft.export_check import check_reload, greedy_tokens, logits, probe_ids
from twinsft.models import load_model
from twinsft.prompts import ALPACA
from twinsft.runtime import cuda_available, export_dtype

CARD_FILE = "README.md"


class PushError(UserError):
    """The Hub push was refused or failed; the merged model stays on disk and a rerun retries only the push."""


class ExportResult(BaseModel):
    local_dir: str
    dtype: str
    pushed: bool = False
    repo_id: str | None = None
    repo_url: str | None = None
    commit_url: str | None = None
    merge_max_logit_diff: float = 0.0
    verified_tokens: int = 0


class MergeCheck(BaseModel):
    dtype: str
    merge_max_logit_diff: float
    verified_tokens: int


def cast_weights(model: Any, dtype: Any) -> Any:
    """Cast the weights as loading with `dtype=` would: buffers such as RoPE frequencies stay in fp32.

    A plain `.to(bf16)` also rounds those buffers, giving a model that generates differently from
    the one serving stacks load from disk; the reload check would then compare two different models.
    """
    buffers = [(module, name, buf) for module in model.modules() for name, buf in module._buffers.items()]
    model = model.to(dtype)
    for module, name, buf in buffers:
        module._buffers[name] = buf.to(model.device) if buf is not None else None
    return model


def merge_to_dir(model: ModelSpec, adapter_dir: Path, output_dir: Path, card: str | None = None) -> MergeCheck:
    """Merge LoRA into the base model in 16-bit, save model + tokenizer (+ card), and verify the saved copy.

    A QLoRA run still merges into a 16-bit base (never into 4-bit weights, which would lose the
    fine-tune to re-quantization). The tokenizer gets the Alpaca chat template so serving uses the
    prompt the model was trained on. Verification: the merged model's logits are compared with the
    adapter model's before casting, and the copy reloaded from disk must generate the same greedy
    tokens as the model in memory; only then does it replace `output_dir`.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = export_dtype()
    # On a CPU, merge in fp32 and cast afterwards: bf16 matmuls there are slow and less exact.
    work_dtype = dtype if cuda_available() else torch.float32
    device_map = {"": 0} if cuda_available() else None
    base = load_model(model, dtype=work_dtype, device_map=device_map)
    adapted = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    ids = probe_ids(tokenizer, adapted.device)
    want = logits(adapted, ids)
    merged = adapted.merge_and_unload()
    diff = float((logits(merged, ids) - want).abs().max())
    merged = cast_weights(merged, dtype)
    tokenizer.chat_template = ALPACA.chat_template()
    # Serving stacks read these from the model files: make them agree with the trained tokenizer.
    merged.config.pad_token_id = tokenizer.pad_token_id
    merged.config.eos_token_id = tokenizer.eos_token_id
    if merged.generation_config is not None:
        merged.generation_config.pad_token_id = tokenizer.pad_token_id
        merged.generation_config.eos_token_id = tokenizer.eos_token_id
    before = greedy_tokens(merged, tokenizer, ids)

    output_dir = output_dir.expanduser().resolve()
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}-"))
    try:
        merged.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if card is not None:
            (tmp / CARD_FILE).write_text(card)
        del merged, adapted, base  # one model in memory at a time: the reload below needs the room
        gc.collect()
        reloaded = AutoModelForCausalLM.from_pretrained(str(tmp), dtype=dtype, device_map=device_map)
        check_reload(before, greedy_tokens(reloaded, AutoTokenizer.from_pretrained(str(tmp)), ids), str(output_dir))
        del reloaded
        if output_dir.exists():
            shutil.rmtree(output_dir)
        tmp.rename(output_dir)  # a crash mid-save never leaves a half-written model at output_dir
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return MergeCheck(dtype=str(dtype).removeprefix("torch."), merge_max_logit_diff=diff, verified_tokens=len(before))


def hub_token() -> str:
    """HF_TOKEN from the environment (or a ZenML secret exported into the step's environment)."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise ConfigError("export.push is on but HF_TOKEN is not set; export HF_TOKEN or set push: false")
    return token


def check_target(api: object, export: ExportSpec) -> None:
    """Refuse to push over a repo that already holds files, or into a public repo when private is asked."""
    repo = export.repo_id
    if not api.repo_exists(repo):  # type: ignore[attr-defined]
        return
    if export.private and not api.repo_info(repo).private:  # type: ignore[attr-defined]
        raise PushError(
            f"export.private is on but Hub repo '{repo}' is public; make it private on the Hub, "
            "set export.private: false, or pick another export.repo_id"
        )
    files = [f for f in api.list_repo_files(repo) if f != ".gitattributes"]  # type: ignore[attr-defined]
    if files and not export.overwrite:
        raise PushError(
            f"Hub repo '{repo}' already holds {len(files)} file(s) on main; set export.overwrite: true "
            "to push a new commit over them, or pick another export.repo_id"
        )


def push_dir(local_dir: Path, export: ExportSpec, commit_message: str) -> tuple[str, str | None]:
    """Upload a saved model folder to export.repo_id; returns the repo URL and the commit URL."""
    from huggingface_hub import HfApi

    assert export.repo_id
    api = HfApi(token=hub_token())
    kept = f"the merged model is saved at {local_dir}"
    try:
        check_target(api, export)
        api.create_repo(export.repo_id, private=export.private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(folder_path=str(local_dir), repo_id=export.repo_id, commit_message=commit_message)
    except PushError as exc:
        raise PushError(f"{exc}; {kept}") from None
    except Exception as exc:  # network, auth, quota: the local model must survive all of them
        why = " ".join(f"{type(exc).__name__}: {exc}".split())  # Hub errors span lines; keep one
        raise PushError(
            f"pushing to '{export.repo_id}' failed ({why}); {kept}; rerun the same command to retry "
            "(training is cached, only the export reruns)"
        ) from exc
    return f"https://huggingface.co/{export.repo_id}", getattr(commit, "commit_url", None)


def export_merged(
    model: ModelSpec, adapter_dir: Path, export: ExportSpec, run_name: str = "", card: str | None = None
) -> ExportResult:
    local = Path(export.output_dir).expanduser().resolve()
    check = merge_to_dir(model, adapter_dir, local, card=card)
    result = ExportResult(local_dir=str(local), **check.model_dump())
    if export.push:
        message = f"twinsft: merged 16-bit model from ZenML run {run_name}" if run_name else "twinsft: merged model"
        url, commit_url = push_dir(local, export, commit_message=message)
        result = result.model_copy(
            update={"pushed": True, "repo_id": export.repo_id, "repo_url": url, "commit_url": commit_url}
        )
    return result
