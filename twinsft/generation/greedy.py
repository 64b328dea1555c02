"""Greedy decoding with the tuned model, in the Alpaca prompt it was trained on.

`greedy_ids` is the one decoding loop: the smoke generation (`generate`) runs it on the adapter
model, and the export runs it before saving and after reloading to prove the saved model is the
trained one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from twinsft.config import ModelSource, ModelSpec
from twinsft.data.alpaca import ALPACA
from twinsft.models import load_model, nf4_config
from twinsft.runtime import device_map, pick_precision, torch_dtype


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
    base = load_model(model, dtype=torch_dtype(precision), device_map=device_map(), quantization_config=quant)
    tuned = PeftModel.from_pretrained(base, str(adapter_dir))
    tuned.eval()
    return tuned, AutoTokenizer.from_pretrained(str(adapter_dir))


def load_merged(folder: Path) -> tuple[Any, Any]:
    """A merged model folder (the export's `merged_model`) and its tokenizer, in the precision the smoke generation
    ran the adapter model in (fp32 on a CPU, bf16/fp16 on a GPU), so greedy decoding sees the same numbers as far
    as the saved weights allow: serving and promotion's re-evaluation load it so."""
    from transformers import AutoTokenizer

    merged = load_model(ModelSource(name=str(folder)), dtype=torch_dtype(pick_precision("auto")),
                        device_map=device_map())
    merged.eval()
    return merged, AutoTokenizer.from_pretrained(str(folder))


def greedy_ids(model: Any, tokenizer: Any, input_ids: Any, max_new_tokens: int, streamer: Any = None) -> list[int]:
    """The token ids greedy decoding adds after `input_ids` (one unpadded prompt), up to and with EOS."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=pad,
            streamer=streamer,
        )
    return out[0, input_ids.shape[1]:].tolist()


def generate(model: Any, tokenizer: Any, instruction: str, max_new_tokens: int, progress: bool = True) -> Generation:
    """The greedy answer to `instruction` in the Alpaca prompt; `progress` logs the count of new tokens."""
    from twinsft.progress import TokenProgress

    prompt = ALPACA.prompt(instruction)
    input_ids = tokenizer(prompt, return_tensors="pt").input_ids.to(model.device)
    streamer = TokenProgress(max_new_tokens) if progress else None
    new = greedy_ids(model, tokenizer, input_ids, max_new_tokens, streamer=streamer)
    return Generation(
        instruction=instruction,
        prompt=prompt,
        response=tokenizer.decode(new, skip_special_tokens=True).strip(),
        new_tokens=len(new),
        stopped_at_eos=bool(new) and new[-1] == tokenizer.eos_token_id,
    )
