"""Step `push_dpo_merged`: the DPO adapter merged into 16-bit weights, verified and saved with its model card (the
SFT stage's export: twinsft.export), GGUF files and a Hub push when asked."""

from pathlib import Path
from typing import Annotated, Any

from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.config import CachePolicy
from zenml.enums import ArtifactType

from twinsft.checks.machine import check_machine
from twinsft.config import DpoTrainingSpec, ExportSpec, LoraSpec, ModelSpec, PreferenceDataSpec
from twinsft.export import ExportResult, export_merged
from twinsft.export.hub import hub_token
from twinsft.export.model_card import render_dpo_card
from twinsft.generation.preferences import PreferenceEvaluation
from twinsft.pinning.code import code_key_of
from twinsft.steps.model_folder import ModelFolder, ModelFolderMaterializer, local_dir
from twinsft.steps.push_merged import export_folder
from twinsft.training.dpo import policy_start
from twinsft.training.report import TrainReport

code_key = code_key_of(__name__)  # this module and all twinsft code it imports


@step(cache_policy=CachePolicy(cache_func=code_key), output_materializers={"dpo_merged_model": ModelFolderMaterializer})
def push_dpo_merged(
    dpo_adapter: ModelFolder,
    report: TrainReport,
    evaluation: PreferenceEvaluation,
    start: ModelFolder,
    model: ModelSpec,
    lora: LoraSpec,
    training: DpoTrainingSpec,
    export: ExportSpec,
    data: PreferenceDataSpec | None = None,
    start_artifact: str = "merged_model",
    start_info: dict[str, Any] | None = None,
) -> tuple[
    Annotated[ModelFolder, ArtifactConfig(name="dpo_merged_model", artifact_type=ArtifactType.MODEL)],
    Annotated[ExportResult, "dpo_export_result"],
]:
    """Merge the DPO adapter into what it trained on (the merged SFT weights, or the SFT base), verify, save with
    a model card (SFT vs DPO on held-out pairs included); GGUF, output_uri copy and Hub push as export says."""
    check_machine(model, merge=True)
    if export.push:
        hub_token()
    context = get_step_context()
    policy_model, _ = policy_start(model, local_dir(start), start_artifact)
    card = render_dpo_card(policy_model, lora, training, data, report, evaluation.summary(), context.pipeline_run.name,
                           start_info or {})
    into = export_folder(export)
    result = export_merged(policy_model, local_dir(dpo_adapter), export, run_name=context.pipeline_run.name, card=card,
                           into=into)
    metadata = {**result.model_dump(exclude_none=True), "start_artifact": start_artifact}
    for name in ("dpo_merged_model", "dpo_export_result"):
        log_metadata(metadata, infer_artifact=True, artifact_name=name)
    if context.model_version is not None:
        log_metadata({"dpo_merged_model_uri": context.get_output_artifact_uri("dpo_merged_model")}, infer_model=True)
    return ModelFolder(into or Path(str(result.local_dir))), result
