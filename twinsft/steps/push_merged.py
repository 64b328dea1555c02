"""Step `push_merged`: the merged 16-bit model, verified and saved with its model card, verified GGUF files when
asked, pushed when asked."""

import logging
import tempfile
from pathlib import Path
from typing import Annotated

from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.config import CachePolicy
from zenml.enums import ArtifactType

from twinsft.checks.machine import check_machine
from twinsft.checks.placement import this_step_runs_on_client
from twinsft.config import DataSpec, ExportSpec, LoraSpec, ModelSpec, TrainingSpec
from twinsft.export import ExportResult, export_merged
from twinsft.export.hub import hub_token
from twinsft.export.model_card import render_card
from twinsft.pinning.code import code_key_of
from twinsft.steps.model_folder import ModelFolder, ModelFolderMaterializer, local_dir
from twinsft.training.report import TrainReport

log = logging.getLogger(__name__)


code_key = code_key_of(__name__)  # this module and all twinsft code it imports


def export_folder(export: ExportSpec) -> Path | None:
    """Where to write the merged model: None (export.output_dir) in the client's own process; elsewhere a
    scratch folder, since output_dir names a folder of the client machine (the artifact keeps the model)."""
    if export.output_dir is not None and this_step_runs_on_client():
        return None
    if export.output_dir is not None:
        log.info("export.output_dir (%s) is on the client machine and this step runs elsewhere: the merged model "
                 "is kept as the merged_model artifact%s", export.output_dir,
                 f" and copied to {export.output_uri}" if export.output_uri else "")
    return Path(tempfile.mkdtemp(prefix="twinsft-merged-")) / "merged"


@step(cache_policy=CachePolicy(cache_func=code_key), output_materializers={"merged_model": ModelFolderMaterializer})
def push_merged(
    adapter: ModelFolder | Path,  # Path: a lora_adapter stored by runs before ModelFolder (a replay reuses it)
    report: TrainReport,
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
    export: ExportSpec,
    data: DataSpec | None = None,
) -> tuple[
    Annotated[ModelFolder, ArtifactConfig(name="merged_model", artifact_type=ArtifactType.MODEL)],
    Annotated[ExportResult, "export_result"],
]:
    """Merge into 16-bit weights, verify, save with a model card, write GGUF files into its gguf/ folder when
    export.gguf lists any, copy it to export.output_uri when set, push it when export.push is on. The folder is
    the `merged_model` artifact (file by file in the artifact store); the result (GGUF checks included) is
    `export_result` and the metadata of both."""
    check_machine(model, merge=True)  # this machine (a pod, on a remote stack), not the client run.py checked
    if export.push:
        hub_token()  # before the merge: HF_TOKEN comes from the pod's environment (a ZenML secret)
    context = get_step_context()
    run_name = context.pipeline_run.name
    card = render_card(model, lora, training, data, report, run_name)
    into = export_folder(export)
    result = export_merged(model, local_dir(adapter), export, run_name=run_name, card=card, into=into)
    metadata = {**result.model_dump(exclude_none=True), "model_revision": model.weights_id()}
    for name in ("merged_model", "export_result"):
        log_metadata(metadata, infer_artifact=True, artifact_name=name)
    if context.model_version is not None:  # where the model is (run.py adds the artifact's id after the run)
        pointer = {"merged_model_uri": context.get_output_artifact_uri("merged_model")}
        if result.output_uri:
            pointer["merged_model_output_uri"] = result.output_uri
        log_metadata(pointer, infer_model=True)
    return ModelFolder(into or Path(str(result.local_dir))), result
