"""Checks that the merged export is the model that was trained: logits before/after merging, greedy tokens after reload."""

from __future__ import annotations

from typing import Any

from twinsft.prompts import ALPACA

PROBE_INSTRUCTION = "Explain in one sentence what fine-tuning changes in a language model."
PROBE_TOKENS = 8


class ExportMismatch(RuntimeError):
    """The saved model does not reproduce the model in memory: do not ship it."""


def probe_ids(tokenizer: Any, device: Any) -> Any:
    return tokenizer(ALPACA.prompt(PROBE_INSTRUCTION), return_tensors="pt").input_ids.to(device)


def logits(model: Any, ids: Any) -> Any:
    import torch

    with torch.inference_mode():
        return model(input_ids=ids).logits.float()


def greedy_tokens(model: Any, tokenizer: Any, ids: Any, n: int = PROBE_TOKENS) -> list[int]:
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False,
                             pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
    return out[0, ids.shape[1]:].tolist()


def check_reload(before: list[int], after: list[int], where: str) -> None:
    if before != after:
        raise ExportMismatch(
            f"the merged model saved to {where} generates {after} after reloading, not {before} as before saving; "
            "the export was not kept"
        )
