"""The `llm_serve` pipeline: one step that answers an instruction with the model its init hook loaded.

Deployed with the stack's deployer (`run.py serve`), it becomes an HTTP service: the init hook
(`load_served_model`) loads the merged model of a ZenML Model stage once, when the service starts, and each
`POST /invoke` runs `answer_instruction` in the service's own process. The parameters' types are the request's
checks: ZenML's deployment app validates the body against a pydantic model made from this signature, so an
empty instruction or too many tokens is a 422 naming the field, before any step runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field
from zenml import pipeline

from twinsft.serving.request import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_MAX_NEW_TOKENS_CAP,
    MAX_INSTRUCTION_CHARS,
    check_instruction,
    check_max_new_tokens,
)
from twinsft.steps.answer import answer_instruction, load_served_model

PIPELINE = "llm_serve"


def served_cap() -> int:
    """This deployment's cap on max_new_tokens: the one its init hook was given (the served model's); the default
    outside a deployment (where the request model is only built, e.g. for its JSON schema)."""
    from zenml.steps.step_context import get_or_create_run_context

    context = get_or_create_run_context()
    state: Any = context.state if context.initialized else None
    return getattr(state, "max_new_tokens_cap", DEFAULT_MAX_NEW_TOKENS_CAP)


def within_served_cap(n: int) -> int:
    return check_max_new_tokens(n, served_cap())


Instruction = Annotated[
    str, Field(min_length=1, max_length=MAX_INSTRUCTION_CHARS, description="The question or task, as in training "
               "(the Alpaca prompt is added)."), AfterValidator(check_instruction),
]
MaxNewTokens = Annotated[
    int, Field(ge=1, description="Token budget of the greedy answer; at most the deployment's cap "
               f"(default {DEFAULT_MAX_NEW_TOKENS_CAP})."), AfterValidator(within_served_cap),
]


@pipeline(name=PIPELINE, enable_cache=False, on_init=load_served_model)
def serve_pipeline(instruction: Instruction, max_new_tokens: MaxNewTokens = DEFAULT_MAX_NEW_TOKENS):
    """Answer `instruction` greedily (Alpaca prompt) with the served ZenML Model version."""
    return answer_instruction(instruction=instruction, max_new_tokens=max_new_tokens)
