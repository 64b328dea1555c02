"""What a request to the served model may ask, and what it gets back.

The checks are pydantic validators on the deployed pipeline's parameters: ZenML's deployment app validates the
request body against a model built from the pipeline's signature, so a bad request is FastAPI's 422 with the
field named, before any step runs. (An exception inside a step would come back as HTTP 200 with
`success: false`: ZenML's invoke endpoint reports step failures in the body.)
"""

from __future__ import annotations

from pydantic import BaseModel

DEFAULT_MAX_NEW_TOKENS = 256
# The cap when a deployment names none; `run.py serve --max-new-tokens-cap` sets a deployment's own.
DEFAULT_MAX_NEW_TOKENS_CAP = 1024
MAX_INSTRUCTION_CHARS = 8000  # the prompt must fit the model's context with room for the answer


def check_instruction(text: str) -> str:
    """The instruction as sent, if it has any text."""
    if not text.strip():
        raise ValueError("instruction is empty: send the question or task to answer")
    return text


def check_max_new_tokens(n: int, cap: int) -> int:
    if n < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {n}")
    if n > cap:
        raise ValueError(f"max_new_tokens {n} is more than this deployment's cap of {cap}; ask for at most {cap}")
    return n


class ServedVersion(BaseModel):
    """The ZenML Model version a deployment answers with."""

    model: str
    version: str
    number: int
    stage: str | None  # the stage it was picked by; None when it was the latest version

    def label(self) -> str:
        where = f", stage {self.stage}" if self.stage else ", latest version"
        return f"{self.model} version {self.version} (#{self.number}{where})"


class Answer(BaseModel):
    """One served answer: the greedy response in the Alpaca prompt, whether it ended at EOS, who answered."""

    instruction: str
    answer: str
    stopped_at_eos: bool
    new_tokens: int
    model: str
    model_version: str
    model_version_number: int
    stage: str | None
