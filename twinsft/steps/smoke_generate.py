from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step
from zenml.config import CachePolicy

from twinsft.caching import generate_code
from twinsft.config import GenerationSpec, ModelSpec
from twinsft.generation import generate, load_adapted


@step(cache_policy=CachePolicy(cache_func=generate_code))
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
    return out.response
