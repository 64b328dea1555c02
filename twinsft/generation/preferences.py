"""The SFT model and the DPO model side by side on held-out preference pairs.

Both are measured the same way: the summed log-probability of each answer (and its EOS) after the Alpaca prompt;
preference accuracy is the share of pairs whose chosen answer gets the higher one, the margin is chosen minus
rejected, the chosen loss is the mean token loss of the chosen answers. DPO's own implicit reward of an answer is
beta x (its log-probability under DPO - under SFT, the reference); its accuracy and margin are those of
chosen vs rejected rewards. Greedy answers to the held-out prompts say whether each model still stops at EOS.

The caller hands two context managers that put one loaded model into the SFT or the DPO state (PEFT's adapter
disabled or enabled, or one adapter or the other), so only one model is in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from pydantic import BaseModel, Field

from twinsft.data.preference.formatting import instruction_of
from twinsft.generation.greedy import greedy_ids

log = logging.getLogger("twinsft.progress")

ModelState = Callable[[], AbstractContextManager[Any]]


class PairScore(BaseModel):
    chosen_logp: float
    rejected_logp: float
    chosen_tokens: int
    rejected_tokens: int

    @property
    def margin(self) -> float:
        return self.chosen_logp - self.rejected_logp


class GreedyAnswer(BaseModel):
    prompt: str
    text: str
    new_tokens: int
    stopped_at_eos: bool


class ModelSide(BaseModel):
    """One model's numbers on the held-out pairs."""

    pairs: list[PairScore]
    answers: list[GreedyAnswer] = Field(default_factory=list)

    @property
    def preference_accuracy(self) -> float:
        return sum(p.margin > 0 for p in self.pairs) / len(self.pairs)

    @property
    def mean_margin(self) -> float:
        return sum(p.margin for p in self.pairs) / len(self.pairs)

    @property
    def chosen_loss(self) -> float:
        """Mean over pairs of the chosen answer's mean token loss (EOS included)."""
        return sum(-p.chosen_logp / p.chosen_tokens for p in self.pairs) / len(self.pairs)

    @property
    def eos_rate(self) -> float | None:
        return sum(a.stopped_at_eos for a in self.answers) / len(self.answers) if self.answers else None

    def summary(self, prefix: str) -> dict[str, float | None]:
        return {f"{prefix}_preference_accuracy": round(self.preference_accuracy, 4),
                f"{prefix}_mean_margin": round(self.mean_margin, 4),
                f"{prefix}_chosen_loss": round(self.chosen_loss, 4),
                f"{prefix}_eos_rate": None if self.eos_rate is None else round(self.eos_rate, 4)}


class PreferenceEvaluation(BaseModel):
    """SFT vs DPO on the held-out pairs, and DPO's implicit rewards against the SFT reference."""

    beta: float
    test_pairs: int = Field(description="Pairs in the test split (the scored ones are its first)")
    max_new_tokens: int
    sft: ModelSide
    dpo: ModelSide

    def rewards(self) -> list[tuple[float, float]]:
        """(chosen, rejected) implicit reward of each pair: beta x (log p_dpo - log p_sft)."""
        return [(self.beta * (d.chosen_logp - s.chosen_logp), self.beta * (d.rejected_logp - s.rejected_logp))
                for s, d in zip(self.sft.pairs, self.dpo.pairs, strict=True)]

    @property
    def reward_accuracy(self) -> float:
        rewards = self.rewards()
        return sum(c > r for c, r in rewards) / len(rewards)

    @property
    def reward_margin(self) -> float:
        rewards = self.rewards()
        return sum(c - r for c, r in rewards) / len(rewards)

    def summary(self) -> dict[str, Any]:
        """The numbers a DPO run is judged by: metadata of the artifact and of the ZenML Model version."""
        return {"eval_pairs": len(self.sft.pairs), "eval_greedy_prompts": len(self.dpo.answers),
                **self.sft.summary("sft"), **self.dpo.summary("dpo"),
                "preference_accuracy_gain": round(self.dpo.preference_accuracy - self.sft.preference_accuracy, 4),
                "dpo_reward_accuracy": round(self.reward_accuracy, 4),
                "dpo_reward_margin": round(self.reward_margin, 4)}

    def markdown(self) -> str:
        rows = [("preference accuracy (summed log-prob)", "preference_accuracy"), ("mean log-prob margin",
                "mean_margin"), ("chosen answers' loss", "chosen_loss"), ("greedy answers stopping at EOS", "eos_rate")]
        s = self.summary()
        lines = [f"# SFT vs DPO on {len(self.sft.pairs)} held-out pairs", "", "| | SFT | DPO |", "|---|---:|---:|"]
        lines += [f"| {label} | {s[f'sft_{key}']} | {s[f'dpo_{key}']} |" for label, key in rows]
        lines += ["", f"DPO implicit reward (beta {self.beta}) against the SFT reference: accuracy "
                  f"{s['dpo_reward_accuracy']}, mean margin {s['dpo_reward_margin']}.", "", "## Greedy answers", ""]
        for sft, dpo in zip(self.sft.answers, self.dpo.answers, strict=True):
            lines += [f"**{instruction_of(sft.prompt)}**", "", f"- SFT{'' if sft.stopped_at_eos else ' (no EOS)'}: "
                      f"{sft.text}", f"- DPO{'' if dpo.stopped_at_eos else ' (no EOS)'}: {dpo.text}", ""]
        return "\n".join(lines)


def answer_logp(model: Any, tokenizer: Any, prompt: str, answer: str) -> tuple[float, int]:
    """Summed log-probability of `answer`'s tokens after `prompt`, and their count. The answer starts where the
    tokenized prompt and prompt + answer diverge, as TRL's DPO cuts them."""
    import torch

    prompt_ids = tokenizer(prompt)["input_ids"]
    full_ids = tokenizer(prompt + answer)["input_ids"]
    start = next((i for i, (a, b) in enumerate(zip(prompt_ids, full_ids, strict=False)) if a != b),
                 min(len(prompt_ids), len(full_ids)))
    ids = torch.tensor([full_ids], device=model.device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, :-1].float()
    logps = torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:, None])[:, 0]
    return float(logps[start - 1:].sum()), len(full_ids) - start


def score_pairs(model: Any, tokenizer: Any, pairs: Sequence[dict[str, str]]) -> list[PairScore]:
    scores = []
    for pair in pairs:
        chosen, chosen_n = answer_logp(model, tokenizer, pair["prompt"], pair["chosen"])
        rejected, rejected_n = answer_logp(model, tokenizer, pair["prompt"], pair["rejected"])
        scores.append(PairScore(chosen_logp=chosen, rejected_logp=rejected, chosen_tokens=chosen_n,
                                rejected_tokens=rejected_n))
    return scores


def greedy_answers(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int) -> list[GreedyAnswer]:
    answers = []
    for prompt in prompts:
        input_ids = tokenizer(prompt, return_tensors="pt").input_ids.to(model.device)
        new = greedy_ids(model, tokenizer, input_ids, max_new_tokens)
        stopped = bool(new) and new[-1] == tokenizer.eos_token_id
        answers.append(GreedyAnswer(prompt=prompt, text=tokenizer.decode(new, skip_special_tokens=True).strip(),
                                    new_tokens=len(new), stopped_at_eos=stopped))
    return answers


def evaluate_side(model: Any, tokenizer: Any, pairs: Sequence[dict[str, str]], greedy_prompts: int,
                  max_new_tokens: int, label: str) -> ModelSide:
    log.info("scoring %d held-out pairs with the %s model", len(pairs), label)
    scores = score_pairs(model, tokenizer, pairs)
    prompts = [p["prompt"] for p in pairs[:greedy_prompts]]
    if prompts:
        log.info("greedy answers to %d held-out prompts with the %s model", len(prompts), label)
    return ModelSide(pairs=scores, answers=greedy_answers(model, tokenizer, prompts, max_new_tokens))


def evaluate_preferences(model: Any, tokenizer: Any, pairs: Sequence[dict[str, str]], *, as_sft: ModelState,
                         as_dpo: ModelState, beta: float, greedy_prompts: int, max_new_tokens: int,
                         test_pairs: int | None = None) -> PreferenceEvaluation:
    """`pairs`: rendered held-out pairs (Alpaca prompt, answers ending with EOS)."""
    model.eval()
    with as_sft():
        sft = evaluate_side(model, tokenizer, pairs, greedy_prompts, max_new_tokens, "SFT")
    with as_dpo():
        dpo = evaluate_side(model, tokenizer, pairs, greedy_prompts, max_new_tokens, "DPO")
    return PreferenceEvaluation(beta=beta, test_pairs=test_pairs or len(pairs), max_new_tokens=max_new_tokens,
                                sft=sft, dpo=dpo)


def load_sft_and_dpo(model: Any, dpo_adapter: Any, sft_adapter: Any = None) -> tuple[Any, Any, ModelState, ModelState]:
    """One model that is the SFT model or the DPO model on demand, its tokenizer, and the two switches.

    `model` (a ModelSpec) is what DPO trained on: the merged SFT weights (`sft_adapter` None: the SFT model is the
    DPO adapter disabled) or the SFT base (`sft_adapter`: the SFT adapter, and the DPO adapter that continued it).
    """
    from contextlib import contextmanager

    from peft import PeftModel
    from transformers import AutoTokenizer

    from twinsft.models import load_model, nf4_config
    from twinsft.runtime import device_map, pick_precision, torch_dtype

    precision = pick_precision("auto")
    quant = nf4_config(precision) if model.load_in_4bit else None
    base = load_model(model, dtype=torch_dtype(precision), device_map=device_map(), quantization_config=quant)
    tokenizer = AutoTokenizer.from_pretrained(str(dpo_adapter))
    if sft_adapter is None:
        both = PeftModel.from_pretrained(base, str(dpo_adapter))
        return both, tokenizer, both.disable_adapter, contextlib_null

    both = PeftModel.from_pretrained(base, str(sft_adapter), adapter_name="sft")
    both.load_adapter(str(dpo_adapter), adapter_name="dpo")

    def switch(name: str) -> ModelState:
        @contextmanager
        def active():  # type: ignore[no-untyped-def]
            both.set_adapter(name)
            yield

        return active

    return both, tokenizer, switch("sft"), switch("dpo")


def contextlib_null() -> AbstractContextManager[Any]:
    from contextlib import nullcontext

    return nullcontext()
