from twinsft.pipelines.sft import sft_pipeline, sft_steps

__all__ = ["sft_pipeline", "sft_steps"]
