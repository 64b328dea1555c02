"""Step `smoke_generate`: one greedy answer of the tuned model, and whether it stopped at EOS."""

from pathlib import Path
from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.config import CachePolicy

from twinsft.config import GenerationSpec, ModelSpec
from twinsft.generation.greedy import generate, load_adapted
from twinsft.runtime import code_digest
from twinsft.steps.visualizations import GenerationMaterializer, SmokeResponse
from twinsft.tracking import existing_experiment


def code_key() -> str:
    return code_digest(__name__)  # this module and all twinsft code it imports


@step(cache_policy=CachePolicy(cache_func=code_key), output_materializers=GenerationMaterializer)
def smoke_generate(adapter: Path, model: ModelSpec, generation: GenerationSpec) -> Annotated[str, "smoke_generation"]:
    """Greedy answer to one instruction in the training prompt: does the model follow it and stop?"""
    tuned, tokenizer = load_adapted(model, adapter)
    out = generate(tuned, tokenizer, generation.instruction, generation.max_new_tokens)
    log_metadata(
        {
            "instruction": out.instruction,
            "non_empty": out.non_empty,
            "stopped_at_eos": out.stopped_at_eos,
            "new_tokens": out.new_tokens,
        },
        infer_artifact=True,
        artifact_name="smoke_generation",
    )
    # Into the training run's Comet experiment, when it had one (its key is on the adapter).
    context = get_step_context()
    with existing_experiment(context.inputs["adapter"][0].run_metadata, name=context.pipeline_run.name) as comet:
        comet.log_generation(out.instruction, out.response, out.stopped_at_eos, out.new_tokens)
    return SmokeResponse(out.response, out.instruction, out.stopped_at_eos, out.new_tokens)
