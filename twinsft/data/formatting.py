"""Turn instruction/output rows into Alpaca training text, and split them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twinsft.prompts import ALPACA, AlpacaTemplate

if TYPE_CHECKING:
    from datasets import Dataset


def render_alpaca(ds: Dataset, eos_token: str, template: AlpacaTemplate = ALPACA) -> Dataset:
    """One `text` column per row: the Alpaca prompt, the response, then EOS so the model learns to stop."""
    if not eos_token:
        raise ValueError("the tokenizer has no EOS token; the model could never learn to stop")

    def texts(batch: dict[str, list[str]]) -> dict[str, list[str]]:
        pairs = zip(batch["instruction"], batch["output"], strict=True)
        return {"text": [template.training_text(i, o, eos_token) for i, o in pairs]}

    return ds.map(texts, batched=True, remove_columns=ds.column_names)


def split_dataset(ds: Dataset, test_size: float, seed: int) -> tuple[Dataset, Dataset]:
    """Seeded shuffle split; at least one row on each side."""
    if len(ds) < 2:
        raise ValueError(f"need at least 2 rows to split into train and test, got {len(ds)}")
    n_test = min(max(1, round(len(ds) * test_size)), len(ds) - 1)
    parts = ds.train_test_split(test_size=n_test, seed=seed, shuffle=True)
    return parts["train"], parts["test"]
