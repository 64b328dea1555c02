from twinsft.pipelines.sft import sft_pipeline

__all__ = ["sft_pipeline"]
