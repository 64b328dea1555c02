"""The `llm_sft` pipeline, and `sft_steps` to put its training half into a larger pipeline."""

from twinsft.pipelines.llm_sft import sft_pipeline, sft_steps

__all__ = ["sft_pipeline", "sft_steps"]
