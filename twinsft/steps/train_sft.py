import tempfile
from pathlib import Path
from typing import Annotated

from datasets import Dataset
from zenml import ArtifactConfig, log_metadata, step
from zenml.config import CachePolicy
from zenml.enums import ArtifactType

from twinsft.caching import train_code
from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.training import TrainReport, train_lora


@step(cache_policy=CachePolicy(cache_func=train_code))
def train_sft(
    train_dataset: Dataset,
    test_dataset: Dataset,
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
) -> tuple[
    Annotated[Path, ArtifactConfig(name="lora_adapter", artifact_type=ArtifactType.MODEL)],
    Annotated[TrainReport, "train_report"],
]:
    """LoRA/QLoRA SFT (Unsloth or TRL + PEFT); held-out loss before and after; adapter + report."""
    adapter_dir = Path(tempfile.mkdtemp(prefix="lora-adapter-"))
    report = train_lora(train_dataset, test_dataset, model, lora, training, adapter_dir)
    summary = {
        "backend": report.backend,
        "mode": report.mode,
        "eval_loss_before": report.eval_loss_before,
        "eval_loss_after": report.eval_loss_after,
        "eval_loss_drop": round(report.eval_loss_drop, 4),
        "tokens_per_s": round(report.tokens_per_s, 1),
        "peak_memory_gib": report.peak_memory_gib,
        "steps": report.steps,
    }
    log_metadata(summary, infer_artifact=True, artifact_name="lora_adapter")
    log_metadata(summary, infer_artifact=True, artifact_name="train_report")
    return adapter_dir, report
