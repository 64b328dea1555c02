"""Which ZenML Model version a deployment serves, and where its merged model is.

Unit-testable without a ZenML store: the lookups take a function that finds a version by stage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from twinsft.errors import UserError

DEFAULT_MODEL_NAME = "twinsft"  # the ZenML Model a run configuration without `model:` versions
STAGES = ("production", "staging")  # the order a deployment that names no stage looks in
LATEST = "latest"
POINTER_KEY = "merged_model_artifact_id"  # what `record_on_model` writes on each version
MERGED_ARTIFACT = "merged_model"


def pick_version(find: Callable[[str, str], Any | None], model: str, stage: str | None) -> tuple[Any, str | None]:
    """(version, stage it was found in) of `model`: the named stage only; unnamed, production, else staging,
    else the latest version (stage None). `find(model, stage)` returns the version or None."""
    if stage:
        version = find(model, stage)
        if version is None:
            raise UserError(f"ZenML Model '{model}' has no version in stage '{stage}'; "
                            f"promote one (`run.py promote VERSION --stage {stage}`) or pick another --stage")
        return version, (None if stage == LATEST else stage)
    for name in STAGES:
        if (version := find(model, name)) is not None:
            return version, name
    version = find(model, LATEST)
    if version is None:
        raise UserError(f"ZenML Model '{model}' has no versions; train one first (`python run.py --config ...`), "
                        "or pass the --config whose `model: name:` names the Model to serve")
    return version, None


def merged_artifact_id(metadata: Mapping[str, Any], linked: Mapping[str, Any], label: str) -> str:
    """The id of the version's `merged_model` artifact: the pointer the run recorded, else the linked artifact."""
    if metadata.get(POINTER_KEY):
        return str(metadata[POINTER_KEY])
    if linked.get(MERGED_ARTIFACT) is not None:
        return str(linked[MERGED_ARTIFACT])
    raise UserError(f"{label} has no merged_model: its run did not reach push_merged; serve another version "
                    "(--stage) or rerun the training")
