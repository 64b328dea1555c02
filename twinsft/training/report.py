"""The typed training report: what a reader of the run needs to judge it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class LossPoint(BaseModel):
    step: int
    loss: float


class TrainReport(BaseModel):
    backend: str
    mode: str = Field(description="lora, qlora, or lora-fp8 / lora-fp8_block (the frozen base in FP8)")
    precision: str
    device: str
    eval_loss_before: float
    eval_loss_after: float
    train_loss: float = Field(description="Mean training loss over the run")
    train_losses: list[LossPoint] = Field(default_factory=list)
    eval_losses: list[LossPoint] = Field(default_factory=list)
    steps: int
    train_tokens: int
    train_runtime_s: float
    tokens_per_s: float
    peak_memory_gib: float = Field(description="Peak memory of the process; under DDP the largest of any rank's")
    memory_kind: str
    trainable_params: int
    total_params: int
    micro_batch: int = 0
    gradient_accumulation_steps: int = 0
    gradient_checkpointing: bool = False
    warmup_steps: int | None = Field(None, description="Optimizer steps of linear warm-up the run had")
    memory_plan: str = ""
    versions: dict[str, str] = Field(default_factory=dict)
    resumed_from_step: int = Field(0, description="Checkpoint step a crashed run resumed from; 0: a fresh start")
    train_rows: int = 0
    eval_rows: int = 0
    train_rows_sha256: str = Field("", description="Content hash of the training rows (as the cache keys them)")
    eval_rows_sha256: str = ""
    num_processes: int = Field(1, description="Training processes (DDP ranks, one per GPU); 1: in the step's process")
    loss_on: str = Field("all", description="Tokens the train and held-out losses cover: all, or the response only")

    @property
    def eval_loss_name(self) -> str:
        """What the held-out loss is called where it is shown: the response loss when only responses count."""
        return "response loss" if self.loss_on == "response" else "eval loss"

    @property
    def eval_loss_drop(self) -> float:
        """Relative drop of the held-out loss, 0.25 meaning 25% lower than the base model's."""
        return (self.eval_loss_before - self.eval_loss_after) / self.eval_loss_before

    @property
    def eval_loss_change(self) -> str:
        """The held-out loss change as text: `-43.3%` for a 43.3% drop."""
        return f"{-100 * self.eval_loss_drop:+.1f}%"

    def summary(self) -> dict[str, Any]:
        """The numbers a run is judged by, for metadata of the step's outputs and the ZenML model version."""
        return {
            "backend": self.backend,
            "mode": self.mode,
            "loss_on": self.loss_on,
            "eval_loss_before": self.eval_loss_before,
            "eval_loss_after": self.eval_loss_after,
            "eval_loss_drop": round(self.eval_loss_drop, 4),
            "tokens_per_s": round(self.tokens_per_s, 1),
            "peak_memory_gib": self.peak_memory_gib,
            "steps": self.steps,
            "micro_batch": self.micro_batch,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "gradient_checkpointing": self.gradient_checkpointing,
            "memory_plan": self.memory_plan,
            "resumed_from_step": self.resumed_from_step,
            "num_processes": self.num_processes,
            **({"warmup_steps": self.warmup_steps} if self.warmup_steps is not None else {}),  # older reports: none
        }
