"""Greedy generation in the Alpaca prompt the model was trained on: the smoke test of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from twinsft.config import ModelSpec
from twinsft.models import load_model, nf4_config
from twinsft.prompts import ALPACA
from twinsft.runtime import cuda_available, pick_precision, torch_dtype


class Generation(BaseModel):
    instruction: str
    prompt: str
    response: str
    new_tokens: int
    stopped_at_eos: bool

    @property
    def non_empty(self) -> bool:
        return bool(self.response.strip())


def load_adapted(model: ModelSpec, adapter_dir: Path) -> tuple[Any, Any]:
    """The base model (4-bit again for QLoRA) with the trained adapter, and the tokenizer saved with it."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    precision = pick_precision("auto")
    quant = nf4_config(precision) if model.load_in_4bit else None
    device_map = {"": 0} if cuda_available() else None
    base = load_model(model, dtype=torch_dtype(precision), device_map=device_map, quantization_config=quant)
    tuned = PeftModel.from_pretrained(base, str(adapter_dir))
    tuned.eval()
    return tuned, AutoTokenizer.from_pretrained(str(adapter_dir))


def generate(model: Any, tokenizer: Any, instruction: str, max_new_tokens: int) -> Generation:
    import torch

    from twinsft.progress import TokenProgress

    prompt = ALPACA.prompt(instruction)
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    with torch.inference_mode():
        out = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            streamer=TokenProgress(max_new_tokens),
        )
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    stopped = bool(new) and new[-1] == tokenizer.eos_token_id
    return Generation(
        instruction=instruction,
        prompt=prompt,
        response=tokenizer.decode(new, skip_special_tokens=True).strip(),
        new_tokens=len(new),
        stopped_at_eos=stopped,
    )
