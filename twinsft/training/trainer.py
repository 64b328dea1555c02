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
                if self.args.world_size > 1:  # summed over ranks once per optimizer step, below
                    self._tokens_not_summed = getattr(self, "_tokens_not_summed", 0) + ids.numel()
                else:
                    self.state.num_input_tokens_seen += ids.numel()
            else:
                super()._track_num_input_tokens(inputs)  # gathers over ranks itself

        def _prepare_for_training(self, *args: Any, **kwargs: Any) -> Any:
            # An evaluate() before train() prepares the model for evaluation and marks it prepared; train()
            # then skips wrapping it in DistributedDataParallel, and no rank's gradient reaches the others
            # (accelerate 1.15, transformers 5.17). Unmark the bare model so that train() wraps it.
            if self.args.world_size > 1 and self.model_wrapped is self.model:
                if getattr(self.model, "_is_accelerate_prepared", False):
                    del self.model._is_accelerate_prepared
                    self.accelerator._models[:] = [m for m in self.accelerator._models if m is not self.model]
            return super()._prepare_for_training(*args, **kwargs)

        def _maybe_log_save_evaluate(self, *args: Any, **kwargs: Any) -> None:
            # Every rank comes here after each optimizer step, before logs, checkpoints and callbacks read
            # the count: one all-reduce per step instead of a gather per micro-batch (transformers' way).
            if self.args.world_size > 1:
                import torch

                local = torch.tensor(getattr(self, "_tokens_not_summed", 0), device=self.args.device)
                self._tokens_not_summed = 0
                self.state.num_input_tokens_seen += int(self.accelerator.reduce(local, reduction="sum").item())
            super()._maybe_log_save_evaluate(*args, **kwargs)

    return TwinSFTTrainer
