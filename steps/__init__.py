"""Shim: the steps live in the installable library as `twinsft.steps`; this keeps `from steps import ...` working."""

from twinsft.steps import format_alpaca, load_datasets, push_merged, smoke_generate, split, train_sft

__all__ = ["format_alpaca", "load_datasets", "push_merged", "smoke_generate", "split", "train_sft"]
