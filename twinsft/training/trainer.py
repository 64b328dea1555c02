"""Our SFTTrainer: TRL's (or Unsloth's patched) trainer, minus a GPU stall in every micro-batch."""

from __future__ import annotations

from functools import cache
from typing import Any


def sft_trainer_class() -> type:
    """A subclass of whatever `trl.SFTTrainer` is now (Unsloth replaces it when imported first)."""
    from trl import SFTTrainer

    return _subclass(SFTTrainer)


@cache
def _subclass(base: type) -> type:
    class TwinSFTTrainer(base):  # type: ignore[misc, valid-type]
        def _track_num_input_tokens(self, inputs: dict[str, Any]) -> None:
            # transformers sums the count on the GPU and reads it back with .item() after every
            # micro-batch. That drains the CUDA queue, so the GPU idles while Python prepares the
            # next forward. A padding-free batch (one row with position_ids, no attention_mask) holds
            # no padding: its size is the count, known on the host without touching the GPU.
            ids = inputs.get("input_ids")
            if ids is not None and "attention_mask" not in inputs and "position_ids" in inputs:
                self.state.num_input_tokens_seen += ids.numel()
            else:
                super()._track_num_input_tokens(inputs)

    return TwinSFTTrainer
