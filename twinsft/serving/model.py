"""The merged model loaded once, and its greedy answers: the smoke generation's own code path
(`twinsft.generation.greedy.generate`, the Alpaca prompt), so a served answer is token for token the
pipeline's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twinsft.generation.greedy import generate
from twinsft.serving.request import Answer, ServedVersion, check_instruction, check_max_new_tokens


@dataclass
class ServedModel:
    model: Any
    tokenizer: Any
    version: ServedVersion
    max_new_tokens_cap: int

    def answer(self, instruction: str, max_new_tokens: int) -> Answer:
        check_instruction(instruction)  # again: a caller that is not the HTTP app gets the same checks
        check_max_new_tokens(max_new_tokens, self.max_new_tokens_cap)
        out = generate(self.model, self.tokenizer, instruction, max_new_tokens, progress=False)
        return Answer(
            instruction=instruction,
            answer=out.response,
            stopped_at_eos=out.stopped_at_eos,
            new_tokens=out.new_tokens,
            model=self.version.model,
            model_version=self.version.version,
            model_version_number=self.version.number,
            stage=self.version.stage,
        )

