"""The six ZenML steps of the SFT pipeline. Each is a thin wrapper over `twinsft`."""

from steps.format_alpaca import format_alpaca
from steps.load_datasets import load_datasets
from steps.push_merged import push_merged
from steps.smoke_generate import smoke_generate
from steps.split import split
from steps.train_sft import train_sft

__all__ = ["format_alpaca", "load_datasets", "push_merged", "smoke_generate", "split", "train_sft"]
