"""The `llm_sft` pipeline, `sft_steps` to put its training half into a larger pipeline, and the table of its
steps (`steps_table`). The pipeline loads on first use: the command line reads the table before it imports
ZenML."""

from __future__ import annotations

from typing import Any

__all__ = ["sft_pipeline", "sft_steps"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from twinsft.pipelines import llm_sft

        return getattr(llm_sft, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
