"""`training.loss_on`: which tokens of an Alpaca training text carry the loss, through TRL's own mechanism.

all: every token, the reference recipe. The `text` rows reach SFTTrainer unchanged.

response: the response and its EOS only. Each text is cut after the template's response marker into TRL's
prompt-completion form, and SFTConfig gets `completion_only_loss=True`. SFTTrainer (TRL 1.14) then tokenizes
prompt + completion, which is the text itself, so the token ids are those of `all`; it takes the tokens past the
tokenized prompt as the completion and, while preparing the dataset, builds a `labels` column with -100 on the
prompt. bfd packing carries `input_ids` and `labels` of each sample together, and the padding-free collator
restarts position_ids at each sample and masks each sample's first label, so no sample attends to another or is
predicted from one. The held-out rows go the same way: the held-out loss is then the response loss.

The mask is exact when the tokenized prompt ends at a token boundary (its tokens are a prefix of the tokenized
text); `check_token_boundary` verifies that for the template. A response whose first characters merge with the
prompt's last token is the exception: TRL puts that merged token in the completion and warns once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twinsft.data.alpaca import AlpacaTemplate
from twinsft.errors import ConfigError

if TYPE_CHECKING:
    from datasets import Dataset

PROBE_INSTRUCTION = "Say hi."
# How responses usually start: a word, a number, a list item, a quote, after a space.
PROBE_RESPONSES = ("Hello there.", "1. First", "- item", '"Quoted"', " Indented")
FIX = "set training.loss_on: all"


def check_template(template: AlpacaTemplate) -> None:
    """The prompt must end with the response marker and hold it only there: the text is cut at its first one."""
    marker = template.response_marker
    if not marker:
        raise ConfigError(
            "training.loss_on 'response' needs the prompt template to end with a response marker (where the loss "
            f"starts), and the Alpaca template has none; {FIX}"
        )
    prompt = template.prompt(PROBE_INSTRUCTION)
    if prompt.find(marker) != len(prompt) - len(marker):
        where = "does not end the prompt" if not prompt.endswith(marker) else "also occurs before the instruction"
        raise ConfigError(
            f"training.loss_on 'response': the Alpaca template's response marker {marker!r} {where}, so the "
            f"response could not be told from the prompt; {FIX}"
        )


def token_boundary_problem(encode: Callable[[str], Sequence[int]], template: AlpacaTemplate) -> str | None:
    """The first probe response whose tokens merge with the prompt's last one, or None when none does."""
    prompt = template.prompt(PROBE_INSTRUCTION)
    prompt_ids = list(encode(prompt))
    for response in PROBE_RESPONSES:
        if list(encode(prompt + response))[: len(prompt_ids)] != prompt_ids:
            return response
    return None


def check_token_boundary(encode: Callable[[str], Sequence[int]], template: AlpacaTemplate, how: str) -> None:
    """The tokenized prompt must be a prefix of the tokenized prompt + response, or the mask would cut a token."""
    response = token_boundary_problem(encode, template)
    if response is not None:
        raise ConfigError(
            f"training.loss_on 'response': the Alpaca prompt (ending {template.response_marker!r}) does not end at "
            f"a token boundary {how}: its last token merges with a response starting {response!r}, so the loss "
            f"mask could not be exact; end the response marker on a token boundary (e.g. a newline) or {FIX}"
        )


def prompt_completion_rows(ds: Dataset, template: AlpacaTemplate) -> Dataset:
    """`text` rows as TRL's prompt-completion rows: the prompt through the response marker, then response + EOS."""

    def split(batch: dict[str, list[str]]) -> dict[str, list[str]]:
        pairs = [template.split_training_text(text) for text in batch["text"]]
        return {"prompt": [p for p, _ in pairs], "completion": [c for _, c in pairs]}

    return ds.map(split, batched=True, remove_columns=ds.column_names)


def rows_for_loss(ds: Dataset, loss_on: str, template: AlpacaTemplate) -> Dataset:
    """The rows SFTTrainer gets: the `text` rows themselves for `all`, prompt-completion rows for `response`."""
    return prompt_completion_rows(ds, template) if loss_on == "response" else ds


def check_prompts_masked(trainer: Any, backend: str) -> None:
    """After SFTTrainer prepared the data: do the prompts of the first training batch row carry -100 labels?

    A guard for trainers that replace TRL's dataset preparation or collator (Unsloth patches SFTTrainer): without
    it, one that ignored the mask would silently train on every token. Each prompt is many tokens long, so a
    response-only row has more -100 labels than samples (the collator masks only each sample's first label).
    """
    row = trainer.train_dataset[0]
    labels = trainer.data_collator([row]).get("labels")
    samples = len(row.get("seq_lengths") or [1])
    if labels is None or int((labels == -100).sum()) <= samples:
        raise ConfigError(
            f"training.loss_on 'response': the {backend} trainer's data preparation left the prompt tokens in the "
            f"loss; use training.backend: trl or {FIX}"
        )
