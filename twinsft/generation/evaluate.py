"""Base vs tuned on held-out rows: greedy answers, whether they stop at EOS, the reference answer's loss.

One adapter model serves both sides: under PEFT's `disable_adapter()` it is the base model, so the
evaluation needs no second load. Answers come from `greedy_ids` (the decoding loop of the smoke
generation and the export check), in the Alpaca prompt training used. The reference loss is the
mean cross-entropy of the reference answer's tokens and EOS after that same prompt: how likely
each model finds the answer the data wanted, including stopping after it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from twinsft.config import DEFAULT_EVAL_SAMPLES
from twinsft.data.alpaca import ALPACA
from twinsft.errors import ConfigError
from twinsft.generation.greedy import generate

log = logging.getLogger("twinsft.progress")


class Answer(BaseModel):
    """One model's side of a held-out row."""

    text: str
    new_tokens: int
    stopped_at_eos: bool
    reference_loss: float = Field(description="Mean token loss of the reference answer and EOS after the prompt")


class EvalRow(BaseModel):
    instruction: str
    reference: str
    reference_tokens: int = Field(description="Tokens the reference loss averages over: the answer's and EOS")
    base: Answer
    tuned: Answer


class EvalReport(BaseModel):
    """The held-out comparison; no rows when `generation.eval_samples` is 0 (the evaluation was off)."""

    test_rows: int = Field(0, description="Rows in the test split the samples are the first of")
    max_new_tokens: int = 0
    rows: list[EvalRow] = Field(default_factory=list)

    @property
    def samples(self) -> int:
        return len(self.rows)

    def mean_reference_loss(self, side: str) -> float | None:
        """Mean over rows of each row's mean token loss (`side`: base or tuned); None without rows."""
        losses = [getattr(row, side).reference_loss for row in self.rows]
        return sum(losses) / len(losses) if losses else None

    def eos_stops(self, side: str) -> int:
        return sum(getattr(row, side).stopped_at_eos for row in self.rows)

    @property
    def reference_loss_change(self) -> float | None:
        """Relative change of the mean reference loss from base to tuned: -0.25 is 25% lower."""
        base, tuned = self.mean_reference_loss("base"), self.mean_reference_loss("tuned")
        return None if base is None or tuned is None else (tuned - base) / base

    @property
    def reference_loss_change_text(self) -> str:
        change = self.reference_loss_change
        return "-" if change is None else f"{100 * change:+.1f}%"

    @property
    def rows_digest(self) -> str:
        """What identifies the held-out rows a comparison is fair on: SHA-256 of each row's instruction and
        reference, in order, and the token budget of the answers (the EOS rate depends on it)."""
        rows = [[row.instruction, row.reference] for row in self.rows]
        payload = json.dumps({"rows": rows, "max_new_tokens": self.max_new_tokens}, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def eos_rate(self, side: str) -> float:
        return self.eos_stops(side) / self.samples if self.rows else 0.0

    def summary(self) -> dict[str, Any]:
        """The numbers for metadata (the artifact's and the model version's); only the count when off."""
        if not self.rows:
            return {"eval_samples": 0}
        return {
            "eval_samples": self.samples,
            "eval_rows_digest": self.rows_digest,
            "eval_reference_loss_base": self.mean_reference_loss("base"),
            "eval_reference_loss_tuned": self.mean_reference_loss("tuned"),
            "eval_reference_loss_change": round(self.reference_loss_change or 0.0, 4),
            "eval_eos_rate_base": self.eos_rate("base"),
            "eval_eos_rate_tuned": self.eos_rate("tuned"),
        }


def eval_samples_for(eval_samples: int | None, test_rows: int, counted_from: str = "") -> int:
    """How many held-out rows to evaluate. An explicit `generation.eval_samples` must fit in the test split
    (preflight checks it when it can count the rows, `smoke_generate` before loading the model otherwise).
    Unset, the default adapts to a small split, with a line saying so."""
    if eval_samples is not None:
        check_eval_samples(eval_samples, test_rows, counted_from)
        return eval_samples
    samples = min(DEFAULT_EVAL_SAMPLES, test_rows)
    if samples < DEFAULT_EVAL_SAMPLES:
        log.info("generation.eval_samples is not set: evaluating the %d held-out rows of the test split (up to %d "
                 "by default)", samples, DEFAULT_EVAL_SAMPLES)
    return samples


def check_eval_samples(eval_samples: int, test_rows: int, counted_from: str = "") -> None:
    """An explicit `generation.eval_samples` must fit in the test split."""
    if eval_samples > test_rows:
        raise ConfigError(
            f"generation.eval_samples {eval_samples} is more than the {test_rows} rows of the test split"
            f"{counted_from}; lower it (0 turns the evaluation off) or raise split.test_size"
        )


def _prompt_ids(model: Any, tokenizer: Any, instruction: str) -> Any:
    """The prompt as `generate` tokenizes it (with the tokenizer's BOS), on the model's device."""
    return tokenizer(ALPACA.prompt(instruction), return_tensors="pt").input_ids.to(model.device)


def _answer_ids(tokenizer: Any, reference: str) -> list[int]:
    """The tokens the reference loss scores: the reference on its own (after the prompt's tokens, the
    context the model answers in), then EOS."""
    return [*tokenizer(reference, add_special_tokens=False).input_ids, tokenizer.eos_token_id]


def reference_loss(model: Any, tokenizer: Any, instruction: str, reference: str) -> float:
    """Mean cross-entropy of `reference` + EOS after the prompt (the prompt's tokens are not scored)."""
    import torch

    prompt = _prompt_ids(model, tokenizer, instruction)
    answer = _answer_ids(tokenizer, reference)
    target = torch.tensor([answer], device=model.device)
    ids = torch.cat([prompt, target], dim=1)
    with torch.inference_mode():
        # Only the logits that predict the answer: position p predicts token p + 1, the last one predicts nothing.
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), logits_to_keep=len(answer) + 1).logits
    loss = torch.nn.functional.cross_entropy(logits[0, :-1].float(), target[0])
    return loss.item()


def answer(model: Any, tokenizer: Any, instruction: str, reference: str, max_new_tokens: int) -> Answer:
    """The model's greedy answer to `instruction` (the smoke generation's `generate`, without its per-token
    progress lines: a line per row is logged instead) and its loss on `reference`."""
    out = generate(model, tokenizer, instruction, max_new_tokens, progress=False)
    return Answer(
        text=out.response,
        new_tokens=out.new_tokens,
        stopped_at_eos=out.stopped_at_eos,
        reference_loss=reference_loss(model, tokenizer, instruction, reference),
    )


def answers_for(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], max_new_tokens: int,
                side: str) -> list[Answer]:
    """`model`'s answer and reference loss for each (instruction, reference) pair, a progress line each."""
    answers = []
    for i, (instruction, reference) in enumerate(pairs, start=1):
        out = answer(model, tokenizer, instruction, reference, max_new_tokens)
        log.info("eval %s %d/%d: %d new tokens%s, reference loss %.4f", side, i, len(pairs), out.new_tokens,
                 ", stopped at EOS" if out.stopped_at_eos else "", out.reference_loss)
        answers.append(out)
    return answers


def evaluate_held_out(
    model: Any, tokenizer: Any, texts: Sequence[str], samples: int, max_new_tokens: int
) -> EvalReport:
    """Base vs tuned on the first `samples` of `texts` (Alpaca training texts of the test split, in order).

    `model` is the PEFT adapter model (`load_adapted`); nothing is generated when `samples` is 0.
    """
    check_eval_samples(samples, len(texts))
    if samples == 0:
        return EvalReport(test_rows=len(texts), max_new_tokens=max_new_tokens)
    pairs = [ALPACA.instruction_and_output(text, tokenizer.eos_token) for text in texts[:samples]]
    with model.disable_adapter():
        base = answers_for(model, tokenizer, pairs, max_new_tokens, "base")
    tuned = answers_for(model, tokenizer, pairs, max_new_tokens, "tuned")
    rows = [
        EvalRow(instruction=instruction, reference=reference, reference_tokens=len(_answer_ids(tokenizer, reference)),
                base=b, tuned=t)
        for (instruction, reference), b, t in zip(pairs, base, tuned, strict=True)
    ]
    return EvalReport(test_rows=len(texts), max_new_tokens=max_new_tokens, rows=rows)
