"""Step `push_merged`: the merged 16-bit model, verified and saved with its model card, verified GGUF files when
asked, pushed when asked."""

from pathlib import Path
from typing import Annotated

from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.config import CachePolicy
from zenml.enums import ArtifactType

from twinsft.config import DataSpec, ExportSpec, LoraSpec, ModelSpec, TrainingSpec
from twinsft.export import ExportResult, export_merged
from twinsft.export.hub import hub_token
from twinsft.export.model_card import render_card
from twinsft.machine import check_machine
from twinsft.runtime import code_digest
from twinsft.training.report import TrainReport


def code_key() -> str:
    return code_digest(__name__)  # this module and all twinsft code it imports


@step(cache_policy=CachePolicy(cache_func=code_key))
def push_merged(
    adapter: Path,
    report: TrainReport,
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
    export: ExportSpec,
    data: DataSpec | None = None,
) -> Annotated[ExportResult, ArtifactConfig(name="merged_model", artifact_type=ArtifactType.MODEL)]:
    """Merge into 16-bit weights, verify, save locally with a model card (always), write GGUF files into its gguf/
    folder when export.gguf lists any, push the folder when export.push is on. The result (GGUF checks included) is
    the step's metadata."""
    check_machine(model, merge=True)  # this machine (a pod, on a remote stack), not the client run.py checked
    if export.push:
        hub_token()  # before the merge: HF_TOKEN comes from the pod's environment (a ZenML secret)
    run_name = get_step_context().pipeline_run.name
    card = render_card(model, lora, training, data, report, run_name)
    result = export_merged(model, adapter, export, run_name=run_name, card=card)
    log_metadata({**result.model_dump(exclude_none=True), "model_revision": model.weights_id()}, infer_artifact=True,
                 artifact_name="merged_model")
    return result
