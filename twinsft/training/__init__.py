"""LoRA/QLoRA supervised fine-tuning behind one function, whichever backend runs it."""

from twinsft.training.fine_tune import train_lora
from twinsft.training.report import LossPoint, TrainReport

__all__ = ["LossPoint", "TrainReport", "train_lora"]
