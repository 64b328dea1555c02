from pathlib import Path
from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.config import CachePolicy

from twinsft.caching import export_code
from twinsft.config import ExportSpec, ModelSpec
from twinsft.export import ExportResult, export_merged


@step(cache_policy=CachePolicy(cache_func=export_code))
def push_merged(adapter: Path, model: ModelSpec, export: ExportSpec) -> Annotated[ExportResult, "merged_model"]:
    """Merge into 16-bit weights, save locally (always), push to the Hub when export.push is on."""
    result = export_merged(model, adapter, export, run_name=get_step_context().pipeline_run.name)
    log_metadata(result.model_dump(exclude_none=True), infer_artifact=True, artifact_name="merged_model")
    return result
