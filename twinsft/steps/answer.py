"""The served model's start-up hook (`load_served_model`: once per deployment process) and its one step
(`answer_instruction`: one greedy answer per request)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from zenml import get_step_context, step

from twinsft.generation.greedy import load_merged
from twinsft.serving.lookup import DEFAULT_MODEL_NAME, LATEST, MERGED_ARTIFACT, merged_artifact_id, pick_version
from twinsft.serving.model import ServedModel
from twinsft.serving.request import DEFAULT_MAX_NEW_TOKENS_CAP, Answer, ServedVersion


def find_version(model: str, stage: str) -> Any | None:
    """The ZenML Model version in `stage` (or the latest), None when there is none."""
    from zenml.client import Client
    from zenml.enums import ModelStages

    try:
        return Client().get_model_version(model, ModelStages.LATEST if stage == LATEST else ModelStages(stage))
    except KeyError:  # ZenML: no such model, or no version in that stage
        return None


def resolve_served(model: str, stage: str | None) -> tuple[ServedVersion, str]:
    """The version a deployment of `model` at `stage` serves, and its merged_model artifact's id (UserError when
    there is none): what `run.py serve` checks before deploying and the hook loads at start-up."""
    version, found_in = pick_version(find_version, model, stage)
    served = ServedVersion(model=model, version=str(version.name), number=int(version.number), stage=found_in)
    artifact = version.get_artifact(MERGED_ARTIFACT)  # every output of the run is linked to its version
    linked = {MERGED_ARTIFACT: artifact.id} if artifact is not None else {}
    return served, merged_artifact_id(version.run_metadata, linked, served.label())


def load_served_model(
    model: str = DEFAULT_MODEL_NAME, stage: str | None = None, max_new_tokens_cap: int = DEFAULT_MAX_NEW_TOKENS_CAP
) -> ServedModel:
    """The deployment's init hook: the merged model of the version `stage` picks, loaded once. Its return value
    is the pipeline state every request's step reads."""
    from zenml.client import Client

    served, artifact_id = resolve_served(model, stage)
    folder = Client().get_artifact_version(artifact_id).load()  # copied from the artifact store, cached locally
    tuned, tokenizer = load_merged(Path(folder))
    print(f"serving {served.label()} from {folder}", flush=True)
    return ServedModel(model=tuned, tokenizer=tokenizer, version=served, max_new_tokens_cap=max_new_tokens_cap)


@step(enable_cache=False)
def answer_instruction(instruction: str, max_new_tokens: int) -> Annotated[Answer, "answer"]:
    """The greedy answer of the model the init hook loaded (the pipeline state) to `instruction`."""
    served = get_step_context().pipeline_state
    if not isinstance(served, ServedModel):
        raise RuntimeError("no served model: run this pipeline through `run.py serve` (its init hook loads one)")
    return served.answer(instruction, max_new_tokens)
