"""The Alpaca prompt: one template object for training, generation, evaluation and serving."""

from __future__ import annotations

from dataclasses import dataclass


def _jinja_literal(text: str) -> str:
    """`text` inside a single-quoted Jinja string literal."""
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")


@dataclass(frozen=True)
class AlpacaTemplate:
    """The reference recipe's Alpaca template (no `input` field). Training text ends with EOS."""

    preamble: str = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    )
    # The prompt ends with it and the response follows it: where `training.loss_on: response` starts the loss.
    response_marker: str = "### Response:\n"

    def prompt(self, instruction: str) -> str:
        """What the model sees at inference: the response slot left empty."""
        return f"{self.preamble}\n\n### Instruction:\n{instruction}\n\n{self.response_marker}"

    def training_text(self, instruction: str, output: str, eos_token: str) -> str:
        return self.prompt(instruction) + output + eos_token

    def split_training_text(self, text: str) -> tuple[str, str]:
        """(prompt, response + EOS) of a training text, cut after its first response marker.

        The first, not the last: an instruction quoting the marker would put the rest of that instruction
        on the response side (in the loss, as the reference recipe has it anyway), while a response quoting
        it would otherwise lose the response's start from the loss.
        """
        cut = text.find(self.response_marker) if self.response_marker else -1
        if cut < 0:
            raise ValueError(f"no response marker {self.response_marker!r} in the training text {text[:80]!r}...")
        cut += len(self.response_marker)
        return text[:cut], text[cut:]

    def instruction_and_output(self, text: str, eos_token: str) -> tuple[str, str]:
        """(instruction, output) back from a `training_text`: the held-out split stores only the text.

        Cut at the first response marker (`split_training_text`), so an output that quotes the template stays
        whole (an instruction that contains the marker cannot be told apart from it).
        """
        head, tail = f"{self.preamble}\n\n### Instruction:\n", f"\n\n{self.response_marker}"
        prompt, completion = self.split_training_text(text) if self.response_marker in text else ("", "")
        if not prompt.startswith(head) or not prompt.endswith(tail) or not completion.endswith(eos_token):
            raise ValueError(f"not an Alpaca training text ending with {eos_token!r}: {text[:60]!r}...")
        return prompt[len(head): len(prompt) - len(tail)], completion[: len(completion) - len(eos_token)]

    def chat_template(self) -> str:
        """A Jinja chat template rendering the last user message the same way, so serving matches training."""
        user_prefix = _jinja_literal(f"{self.preamble}\n\n### Instruction:\n")
        user_suffix = _jinja_literal(f"\n\n{self.response_marker}")
        return (
            "{% for message in messages %}{% if message['role'] == 'user' %}"
            f"{{{{ '{user_prefix}' + message['content'] + '{user_suffix}' }}}}"
            "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
        )


ALPACA = AlpacaTemplate()
