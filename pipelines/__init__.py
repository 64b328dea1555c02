"""Shim: the pipeline lives in the library as `twinsft.pipelines`; this keeps `from pipelines import ...` working."""

from twinsft.pipelines import sft_pipeline, sft_steps

__all__ = ["sft_pipeline", "sft_steps"]
