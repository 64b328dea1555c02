"""Shim: the pipeline lives in the installable library as `twinsft.pipelines`; this keeps `from pipelines import ...` working."""

from twinsft.pipelines import sft_pipeline

__all__ = ["sft_pipeline"]
