"""One fine-tuning run's inputs as one value: the rows, the model, LoRA and training settings, where the adapter goes.

The step builds it; the launcher, the checkpoints (training.resume), the ranks and the training body
(training.fit) all take it whole, so adding an input means changing this class, not every signature.
Its metrics go to a MetricsSink, e.g. an experiment tracker's `log_metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from twinsft.config import LoraSpec, ModelSpec, TrainingSpec

if TYPE_CHECKING:
    from datasets import Dataset

MetricsSink = Callable[[Mapping[str, float], int], None]  # (a trainer log and tokens/s, the optimizer step)


@dataclass(frozen=True)
class TrainingJob:
    train_ds: Dataset
    eval_ds: Dataset
    model: ModelSpec
    lora: LoraSpec
    # As configured: each process takes its share of the batch (world.split_batch), and on CUDA the memory
    # plan may re-split that. Also says where checkpoints go and whether they are kept (training.resume).
    training: TrainingSpec
    adapter_dir: Path  # the main process saves the adapter and the tokenizer here
    # sft: SFTTrainer on `text` rows; dpo: DPOTrainer on rendered preference pairs (training.dpo), one process.
    kind: Literal["sft", "dpo"] = "sft"
    start_adapter: Path | None = None  # dpo: continue this (SFT) adapter on `model` instead of a new LoRA

    @property
    def rows(self) -> tuple[int, int]:
        """(training rows, held-out rows), as the report counts them."""
        return len(self.train_ds), len(self.eval_ds)
