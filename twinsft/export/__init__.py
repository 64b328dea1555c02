"""The export stage: merge the adapter into 16-bit weights and save them verified (`merge`), with a model
card (`model_card`), write verified GGUF files for llama.cpp and Ollama when asked (`gguf`), then push them to
the Hub when asked (`hub`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel

from twinsft import storage
from twinsft.config import ExportSpec, ModelSpec
from twinsft.export.gguf import GGUFCheck, export_gguf
from twinsft.export.hub import PushError, push_dir
from twinsft.export.merge import CARD_FILE, merge_to_dir
from twinsft.export.model_card import gguf_section

__all__ = ["ExportResult", "PushError", "export_merged"]

log = logging.getLogger(__name__)


class ExportResult(BaseModel):
    local_dir: str | None = None  # export.output_dir, where the step wrote it (a local stack); None elsewhere
    output_uri: str | None = None  # export.output_uri, when set: a copy of the merged model's files
    dtype: str
    pushed: bool = False
    repo_id: str | None = None
    repo_url: str | None = None
    commit_url: str | None = None
    merge_max_logit_diff: float = 0.0
    merge_rel_logit_diff: float = 0.0
    verified_tokens: int = 0
    # Only when export.gguf asks for files (None keeps them out of the step metadata otherwise).
    gguf: dict[str, GGUFCheck] | None = None  # quantization -> path, size, logit diff, greedy match
    gguf_modelfile: str | None = None
    gguf_warnings: list[str] | None = None


def gguf_name(export: ExportSpec, local: Path) -> str:
    """The GGUF files' stem: the Hub repo's name when pushing there, else the output folder's."""
    return export.repo_id.split("/")[-1] if export.repo_id else local.name


def export_merged(
    model: ModelSpec, adapter_dir: Path, export: ExportSpec, run_name: str = "", card: str | None = None,
    into: Path | None = None,
) -> ExportResult:
    """Merge and save to `into` (else `export.output_dir`), write GGUF files into its gguf/ folder (when
    `export.gguf`), copy the folder to `export.output_uri` (when set), then push it to `export.repo_id` (when
    `export.push`)."""
    if into is None and export.output_dir is None:
        raise ValueError("export_merged needs a folder: `into` or export.output_dir")
    local = (into or Path(str(export.output_dir))).expanduser().resolve()
    check = merge_to_dir(model, adapter_dir, local, card=card)
    result = ExportResult(local_dir=None if into is not None else str(local), **check.model_dump())
    if export.gguf:
        gguf = export_gguf(local, list(export.gguf), gguf_name(export, local))
        for warning in gguf.warnings:
            log.warning(warning)
        if card is not None:
            # Written beside the folder, then moved in: a push never uploads a half-written card.
            tmp = local.parent / f".{local.name}-{CARD_FILE}"
            tmp.write_text(card + gguf_section(gguf, str(local)))
            os.replace(tmp, local / CARD_FILE)
        result = result.model_copy(
            update={"gguf": gguf.files, "gguf_modelfile": gguf.modelfile, "gguf_warnings": gguf.warnings}
        )
    if export.output_uri:
        log.info("copying the merged model to %s", export.output_uri)
        storage.copy_tree(str(local), export.output_uri)
        result = result.model_copy(update={"output_uri": export.output_uri})
    if export.push:
        message = f"twinsft: merged 16-bit model from ZenML run {run_name}" if run_name else "twinsft: merged model"
        if export.gguf:
            message += f" (+ GGUF {', '.join(export.gguf)})"
        url, commit_url = push_dir(local, export, commit_message=message)
        result = result.model_copy(
            update={"pushed": True, "repo_id": export.repo_id, "repo_url": url, "commit_url": commit_url}
        )
    return result
