"""LoRA/QLoRA supervised fine-tuning: one job, trained in this process or on N GPUs, whichever backend runs it."""

from twinsft.training.job import TrainingJob
from twinsft.training.launch import train, train_lora
from twinsft.training.report import LossPoint, TrainReport

__all__ = ["LossPoint", "TrainReport", "TrainingJob", "train", "train_lora"]
