"""Turn instruction/output rows into Alpaca training text, and split them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twinsft.data.alpaca import ALPACA, AlpacaTemplate
from twinsft.errors import DataError

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


def held_out_rows(rows: int, test_size: float) -> int:
    """Rows `split_dataset` puts in the test split (preflight counts them before any data loads)."""
    return min(max(1, round(rows * test_size)), rows - 1)


def split_dataset(ds: Dataset, test_size: float, seed: int) -> tuple[Dataset, Dataset]:
    """Seeded shuffle split; at least one row on each side."""
    if len(ds) < 2:
        raise DataError(f"the data has {len(ds)} row(s) after dropping duplicates and empty rows; the train/test split "
                        "needs at least 2: add rows to data.sources")
    parts = ds.train_test_split(test_size=held_out_rows(len(ds), test_size), seed=seed, shuffle=True)
    return parts["train"], parts["test"]
