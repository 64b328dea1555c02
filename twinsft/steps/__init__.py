"""The seven ZenML steps of the SFT pipeline, one thin wrapper over the library per module, and what
they share: how their artifacts are stored (`dataset_materializer`), shown (`visualizations`,
`evaluation_materializer`, `promotion_materializer`) and versioned (`model_version`)."""

from twinsft.steps.format_alpaca import format_alpaca
from twinsft.steps.load_datasets import load_datasets
from twinsft.steps.promote import promote
from twinsft.steps.push_merged import push_merged
from twinsft.steps.smoke_generate import smoke_generate
from twinsft.steps.split import split
from twinsft.steps.train_sft import train_sft

__all__ = ["format_alpaca", "load_datasets", "promote", "push_merged", "smoke_generate", "split", "train_sft"]
