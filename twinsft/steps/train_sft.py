"""Step `train_sft`: LoRA/QLoRA supervised fine-tuning, its adapter and its training report."""

import tempfile
from pathlib import Path
from typing import Annotated

from datasets import Dataset
from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.config import CachePolicy
from zenml.enums import ArtifactType

from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.runtime import code_digest
from twinsft.steps.model_folder import ModelFolder, ModelFolderMaterializer
from twinsft.steps.model_version import model_version_metadata
from twinsft.steps.visualizations import TrainReportMaterializer
from twinsft.tracking import training_experiment
from twinsft.training import TrainReport, train_lora


def code_key() -> str:
    return code_digest(__name__)  # this module and all twinsft code it imports


@step(
    cache_policy=CachePolicy(cache_func=code_key),
    output_materializers={"lora_adapter": ModelFolderMaterializer, "train_report": TrainReportMaterializer},
)
def train_sft(
    train_dataset: Dataset,
    test_dataset: Dataset,
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
) -> tuple[
    Annotated[ModelFolder, ArtifactConfig(name="lora_adapter", artifact_type=ArtifactType.MODEL)],
    Annotated[TrainReport, "train_report"],
]:
    """LoRA/QLoRA SFT (Unsloth or TRL + PEFT); held-out loss before and after; adapter + report."""
    adapter_dir = Path(tempfile.mkdtemp(prefix="lora-adapter-"))
    context = get_step_context()
    params = {"model": model.model_dump(), "lora": lora.model_dump(), "training": training.model_dump()}
    with training_experiment(training.report_to, name=context.pipeline_run.name, params=params) as comet:
        report = train_lora(
            train_dataset, test_dataset, model, lora, training, adapter_dir, callbacks=comet.callbacks()
        )
        comet.log_report(report)
    summary = {**report.summary(), **comet.metadata()}
    log_metadata(summary, infer_artifact=True, artifact_name="lora_adapter")
    log_metadata(summary, infer_artifact=True, artifact_name="train_report")
    if context.model_version is not None:
        log_metadata(model_version_metadata(report, comet.metadata()), infer_model=True)
    return ModelFolder(adapter_dir), report  # stored file by file in the artifact store
