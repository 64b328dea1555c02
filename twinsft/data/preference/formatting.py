"""Preference pairs in the form DPO trains on: the Alpaca prompt of the SFT stage, both answers ending with EOS."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twinsft.data.alpaca import ALPACA, AlpacaTemplate

if TYPE_CHECKING:
    from datasets import Dataset


def render_pairs(ds: Dataset, eos_token: str, template: AlpacaTemplate = ALPACA) -> Dataset:
    """`prompt` rendered as at inference (the response slot empty), `chosen` and `rejected` each + EOS, so DPO
    also weighs where each answer stops. TRL adds no second EOS to an answer that ends with it."""
    if not eos_token:
        raise ValueError("the tokenizer has no EOS token; the model could never learn to stop")

    def rows(batch: dict[str, list[str]]) -> dict[str, list[str]]:
        return {"prompt": [template.prompt(p) for p in batch["prompt"]],
                "chosen": [c + eos_token for c in batch["chosen"]],
                "rejected": [r + eos_token for r in batch["rejected"]]}

    return ds.map(rows, batched=True, remove_columns=ds.column_names)


def instruction_of(prompt: str, template: AlpacaTemplate = ALPACA) -> str:
    """The instruction back from a rendered prompt (held-out prompts are answered greedily)."""
    head, tail = f"{template.preamble}\n\n### Instruction:\n", f"\n\n{template.response_marker}"
    if not prompt.startswith(head) or not prompt.endswith(tail):
        raise ValueError(f"not an Alpaca prompt: {prompt[:60]!r}...")
    return prompt[len(head): len(prompt) - len(tail)]
