"""Merge the adapter into 16-bit weights and save them, verified: the merged logits match the adapter
model's, and the copy reloaded from disk generates the same greedy tokens as the model in memory."""

from __future__ import annotations

import gc
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from twinsft.config import ModelSpec
from twinsft.data.alpaca import ALPACA
from twinsft.generation.greedy import greedy_ids
from twinsft.models import load_model
from twinsft.runtime import cuda_available, device_map, export_dtype

CARD_FILE = "README.md"
PROBE_INSTRUCTION = "Explain in one sentence what fine-tuning changes in a language model."
PROBE_TOKENS = 8


class ExportMismatch(RuntimeError):
    """The saved model does not reproduce the model in memory: do not ship it."""


class MergeCheck(BaseModel):
    dtype: str
    merge_max_logit_diff: float
    verified_tokens: int
    merge_rel_logit_diff: float = 0.0  # ||merged - adapter on the 16-bit base|| / ||adapter on the 16-bit base||


# Largest relative logit difference (Frobenius norm) between the merged model and the adapter on the 16-bit base,
# by the dtype the merge computes in. An fp32 merge (a CPU) lands at ~1e-6, and a base that is not the one
# trained on, such as the FP8-rounded copy an FP8-base run multiplied, at ~3.5e-2 (tests/export/
# test_merge_fp8_base.py). A bf16 merge (a GPU) rounds W + BA once: 1.2e-2 on the tests' tiny Llama with a large
# adapter, so its bound only catches gross mismatches (a wrong base or adapter); there the exactness rests on
# merge_to_dir loading the 16-bit checkpoint, never an FP8 or 4-bit copy.
MERGE_TOLERANCE = {"float32": 1e-4, "16-bit": 1e-1}


def check_merge(got: Any, want: Any, work_dtype: Any) -> float:
    """The merged model's logits against the adapter's on the 16-bit base; ExportMismatch past MERGE_TOLERANCE."""
    import torch

    rel = float((got.double() - want.double()).norm() / want.double().norm().clamp(min=1e-30))
    tolerance = MERGE_TOLERANCE["float32" if work_dtype == torch.float32 else "16-bit"]
    if not rel <= tolerance:
        raise ExportMismatch(
            f"the merged model's logits differ from the adapter on the 16-bit base by {rel:.2e} (relative) > "
            f"{tolerance:g}: the merge did not reproduce the trained model; the export was not kept"
        )
    return rel


def probe_ids(tokenizer: Any, device: Any) -> Any:
    return tokenizer(ALPACA.prompt(PROBE_INSTRUCTION), return_tensors="pt").input_ids.to(device)


def logits(model: Any, ids: Any) -> Any:
    import torch

    with torch.inference_mode():
        return model(input_ids=ids).logits.float()


def check_reload(before: list[int], after: list[int], where: str) -> None:
    if before != after:
        raise ExportMismatch(
            f"the merged model saved to {where} generates {after} after reloading, not {before} as before saving; "
            "the export was not kept"
        )


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
    fine-tune to re-quantization); so does a run whose frozen base was FP8 (model.base_precision): the
    base is always loaded here from its 16-bit checkpoint, never the FP8-rounded copy training multiplied.
    The tokenizer gets the Alpaca chat template so serving uses the
    prompt the model was trained on. Verification: the merged model's logits are compared with the
    adapter model's before casting, and the copy reloaded from disk must generate the same greedy
    tokens as the model in memory; only then does it replace `output_dir`. The merged logits must match the
    adapter on the 16-bit base within MERGE_TOLERANCE.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = export_dtype()
    # On a CPU, merge in fp32 and cast afterwards: bf16 matmuls there are slow and less exact.
    work_dtype = dtype if cuda_available() else torch.float32
    base = load_model(model, dtype=work_dtype, device_map=device_map())
    adapted = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir))
    ids = probe_ids(tokenizer, adapted.device)
    want = logits(adapted, ids)
    merged = adapted.merge_and_unload()
    got = logits(merged, ids)
    diff = float((got - want).abs().max())
    rel = check_merge(got, want, work_dtype)
    merged = cast_weights(merged, dtype)
    tokenizer.chat_template = ALPACA.chat_template()
    # Serving stacks read these from the model files: make them agree with the trained tokenizer.
    merged.config.pad_token_id = tokenizer.pad_token_id
    merged.config.eos_token_id = tokenizer.eos_token_id
    if merged.generation_config is not None:
        merged.generation_config.pad_token_id = tokenizer.pad_token_id
        merged.generation_config.eos_token_id = tokenizer.eos_token_id
    before = greedy_ids(merged, tokenizer, ids, PROBE_TOKENS)

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
        reloaded = AutoModelForCausalLM.from_pretrained(str(tmp), dtype=dtype, device_map=device_map())
        after = greedy_ids(reloaded, AutoTokenizer.from_pretrained(str(tmp)), ids, PROBE_TOKENS)
        check_reload(before, after, str(output_dir))
        del reloaded
        if output_dir.exists():
            shutil.rmtree(output_dir)
        tmp.rename(output_dir)  # a crash mid-save never leaves a half-written model at output_dir
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return MergeCheck(dtype=str(dtype).removeprefix("torch."), merge_max_logit_diff=diff, verified_tokens=len(before),
                      merge_rel_logit_diff=rel)
