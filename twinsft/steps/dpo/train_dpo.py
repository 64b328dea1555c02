"""Step `train_dpo`: DPO with LoRA from the SFT stage's artifact, its adapter and its training report."""

import tempfile
from pathlib import Path
from typing import Annotated, Any

from datasets import Dataset
from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.config import CachePolicy
from zenml.enums import ArtifactType

from twinsft.checks.machine import check_machine
from twinsft.config import DpoTrainingSpec, LoraSpec, ModelSpec
from twinsft.pinning.code import code_key_of
from twinsft.runtime import import_unsloth_first
from twinsft.steps.model_folder import ModelFolder, ModelFolderMaterializer, local_dir
from twinsft.steps.model_version import model_version_metadata
from twinsft.steps.visualizations import TrainReportMaterializer
from twinsft.tracking import training_experiment
from twinsft.training import TrainingJob, TrainReport
from twinsft.training.dpo import policy_start
from twinsft.training.launch import train

code_key = code_key_of(__name__)  # this module and all twinsft code it imports


@step(
    cache_policy=CachePolicy(cache_func=code_key),
    output_materializers={"dpo_adapter": ModelFolderMaterializer, "dpo_report": TrainReportMaterializer},
)
def train_dpo(
    train_pairs: Dataset,
    test_pairs: Dataset,
    start: ModelFolder,
    model: ModelSpec,
    lora: LoraSpec,
    training: DpoTrainingSpec,
    start_artifact: str = "merged_model",
    start_info: dict[str, Any] | None = None,
) -> tuple[
    Annotated[ModelFolder, ArtifactConfig(name="dpo_adapter", artifact_type=ArtifactType.MODEL)],
    Annotated[TrainReport, "dpo_report"],
]:
    """DPO (TRL's DPOTrainer, or Unsloth's patched one on CUDA) from `start`, the SFT stage's `start_artifact`
    (merged_model: a new LoRA on it; lora_adapter: that adapter on `model`, trained on). Held-out DPO loss before
    (ln 2 for a new LoRA) and after; the adapter and the report. `start_info` (which SFT run and model version the
    artifact came from) goes onto the ZenML Model version."""
    import_unsloth_first(training.backend)
    check_machine(model, training)
    policy_model, start_adapter = policy_start(model, local_dir(start), start_artifact)
    adapter_dir = Path(tempfile.mkdtemp(prefix="dpo-adapter-"))
    context = get_step_context()
    params = {"model": model.model_dump(), "lora": lora.model_dump(), "training": training.model_dump(),
              "start": start_info or {}}
    one_process = training.model_copy(update={"num_processes": 1})  # DPO trains in this process (no torchrun)
    with training_experiment(training.report_to, name=context.pipeline_run.name, params=params) as comet:
        job = TrainingJob(train_pairs, test_pairs, policy_model, lora, one_process, adapter_dir, kind="dpo",
                          start_adapter=start_adapter)
        report = train(job, metrics=comet.log_metrics if comet.active else None)
        comet.log_report(report)
    summary = {**report.summary(), **comet.metadata(), "start_artifact": start_artifact, **(start_info or {})}
    log_metadata(summary, infer_artifact=True, artifact_name="dpo_adapter")
    log_metadata(summary, infer_artifact=True, artifact_name="dpo_report")
    if context.model_version is not None:  # prefixed: a chained run's version also holds the SFT numbers
        dpo = {f"dpo_{k}": v for k, v in model_version_metadata(report, comet.metadata()).items()}
        log_metadata({**dpo, "dpo_start_artifact": start_artifact, **(start_info or {})}, infer_model=True)
    return ModelFolder(adapter_dir), report
