from pathlib import Path
from typing import Annotated

from zenml import ArtifactConfig, get_step_context, log_metadata, step
from zenml.config import CachePolicy
from zenml.enums import ArtifactType

from twinsft.caching import export_code
from twinsft.config import DataSpec, ExportSpec, LoraSpec, ModelSpec, TrainingSpec
from twinsft.export import ExportResult, export_merged
from twinsft.model_card import render_card
from twinsft.training import TrainReport


@step(cache_policy=CachePolicy(cache_func=export_code))
def push_merged(
    adapter: Path,
    report: TrainReport,
    model: ModelSpec,
    lora: LoraSpec,
    training: TrainingSpec,
    export: ExportSpec,
    data: DataSpec | None = None,
) -> Annotated[ExportResult, ArtifactConfig(name="merged_model", artifact_type=ArtifactType.MODEL)]:
    """Merge into 16-bit weights, verify, save locally with a model card (always), push when export.push is on."""
    run_name = get_step_context().pipeline_run.name
    card = render_card(model, lora, training, data, report, run_name)
    result = export_merged(model, adapter, export, run_name=run_name, card=card)
    log_metadata(result.model_dump(exclude_none=True), infer_artifact=True, artifact_name="merged_model")
    return result
