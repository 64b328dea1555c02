"""The Alpaca prompt: one template object for training, generation, evaluation and serving."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AlpacaTemplate:
    """The reference recipe's Alpaca template (no `input` field). Training text ends with EOS."""

    preamble: str = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    )

    def prompt(self, instruction: str) -> str:
        """What the model sees at inference: the response slot left empty."""
        return f"{self.preamble}\n\n### Instruction:\n{instruction}\n\n### Response:\n"

    def training_text(self, instruction: str, output: str, eos_token: str) -> str:
        return self.prompt(instruction) + output + eos_token

    def split_training_text(self, text: str, eos_token: str) -> tuple[str, str]:
        """(instruction, output) back from a `training_text`: the held-out split stores only the text.

        The output starts after the first response header, so an output that quotes the template stays
        whole (an instruction that contains the header cannot be told apart from it).
        """
        head, marker = f"{self.preamble}\n\n### Instruction:\n", "\n\n### Response:\n"
        if not text.startswith(head) or marker not in text or not text.endswith(eos_token):
            raise ValueError(f"not an Alpaca training text ending with {eos_token!r}: {text[:60]!r}...")
        instruction, output = text[len(head):].split(marker, 1)
        return instruction, output[: len(output) - len(eos_token)]

    def chat_template(self) -> str:
        """A Jinja chat template rendering the last user message the same way, so serving matches training."""
        pre = self.preamble.replace("'", "\\'")
        return (
            "{% for message in messages %}{% if message['role'] == 'user' %}"
            f"{{{{ '{pre}\\n\\n### Instruction:\\n' + message['content'] + '\\n\\n### Response:\\n' }}}}"
            "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
        )


ALPACA = AlpacaTemplate()
