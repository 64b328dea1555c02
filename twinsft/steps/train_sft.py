"""Step `train_sft`: LoRA/QLoRA supervised fine-tuning, its adapter and its training report."""

import tempfile
from pathlib import Path
from typing import Annotated

from datasets import Dataset
from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.config import CachePolicy
from zenml.enums import ArtifactType

from twinsft.checks.machine import check_machine
from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.pinning.code import code_key_of
from twinsft.runtime import import_unsloth_first
from twinsft.steps.model_folder import ModelFolder, ModelFolderMaterializer
from twinsft.steps.model_version import model_version_metadata
from twinsft.steps.visualizations import TrainReportMaterializer
from twinsft.tracking import training_experiment
from twinsft.training import TrainingJob, TrainReport
from twinsft.training.launch import RANK_MODULE, train

# This module and all twinsft code it imports, and the rank entry point, which torchrun runs by name.
code_key = code_key_of(__name__, RANK_MODULE)


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
    """LoRA/QLoRA SFT (Unsloth or TRL + PEFT) on one or several GPUs; held-out loss before and after; adapter +
    report."""
    # First: in the step's own process (a remote stack) nothing has imported transformers yet, and the Comet
    # callbacks below would. Training in this process relies on both; torchrun's ranks prepare their own.
    import_unsloth_first(training.backend)
    check_machine(model, training)  # this machine (a pod, on a remote stack), not the client run.py checked
    adapter_dir = Path(tempfile.mkdtemp(prefix="lora-adapter-"))
    context = get_step_context()
    params = {"model": model.model_dump(), "lora": lora.model_dump(), "training": training.model_dump()}
    with training_experiment(training.report_to, name=context.pipeline_run.name, params=params) as comet:
        # In this process, or on every GPU through torchrun (training.num_processes).
        job = TrainingJob(train_dataset, test_dataset, model, lora, training, adapter_dir)
        report = train(job, metrics=comet.log_metrics if comet.active else None)
        comet.log_report(report)
    summary = {**report.summary(), **comet.metadata(), "model_revision": model.weights_id()}
    log_metadata(summary, infer_artifact=True, artifact_name="lora_adapter")
    log_metadata(summary, infer_artifact=True, artifact_name="train_report")
    if context.model_version is not None:
        log_metadata(model_version_metadata(report, comet.metadata()), infer_model=True)
    return ModelFolder(adapter_dir), report  # stored file by file in the artifact store
