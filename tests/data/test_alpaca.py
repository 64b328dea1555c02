"""The Alpaca template read backwards: a training text gives back its instruction and output."""

import pytest

from twinsft.data.alpaca import ALPACA


@pytest.mark.parametrize(
    ("instruction", "output"),
    [
        ("Say hi.", "Hi!"),
        ("Summarise this.\n\n### Input:\nA long text.", "Short."),  # an `input` folded into the instruction
        ("Show the template.", "It ends with:\n\n### Response:\nand then the answer."),  # an output quoting it
        ("Answer with nothing.", ""),
    ],
)
def test_instruction_and_output_inverts_training_text(instruction, output):
    text = ALPACA.training_text(instruction, output, "</s>")
    assert ALPACA.instruction_and_output(text, "</s>") == (instruction, output)


@pytest.mark.parametrize(
    "text",
    [
        "Say hi. Hi!</s>",  # no template
        ALPACA.prompt("Say hi.") + "Hi!",  # no EOS
        ALPACA.prompt("Say hi.").replace("### Response:\n", "") + "Hi!</s>",  # no response header
    ],
)
def test_instruction_and_output_rejects_other_text(text):
    with pytest.raises(ValueError, match="not an Alpaca training text"):
        ALPACA.instruction_and_output(text, "</s>")
