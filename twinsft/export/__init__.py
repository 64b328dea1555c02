"""The export stage: merge the adapter into 16-bit weights and save them verified (`merge`), with a model
card (`model_card`), then push them to the Hub when asked (`hub`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from twinsft.config import ExportSpec, ModelSpec
from twinsft.export.hub import PushError, push_dir
from twinsft.export.merge import merge_to_dir

__all__ = ["ExportResult", "PushError", "export_merged"]


class ExportResult(BaseModel):
    local_dir: str
    dtype: str
    pushed: bool = False
    repo_id: str | None = None
    repo_url: str | None = None
    commit_url: str | None = None
    merge_max_logit_diff: float = 0.0
    verified_tokens: int = 0


def export_merged(
    model: ModelSpec, adapter_dir: Path, export: ExportSpec, run_name: str = "", card: str | None = None
) -> ExportResult:
    """Merge and save to `export.output_dir` (always), then push to `export.repo_id` (when `export.push`)."""
    local = Path(export.output_dir).expanduser().resolve()
    check = merge_to_dir(model, adapter_dir, local, card=card)
    result = ExportResult(local_dir=str(local), **check.model_dump())
    if export.push:
        message = f"twinsft: merged 16-bit model from ZenML run {run_name}" if run_name else "twinsft: merged model"
        url, commit_url = push_dir(local, export, commit_message=message)
        result = result.model_copy(
            update={"pushed": True, "repo_id": export.repo_id, "repo_url": url, "commit_url": commit_url}
        )
    return result
