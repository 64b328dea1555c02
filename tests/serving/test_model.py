"""A served answer is the smoke generation's: the same greedy code path on the merged model, with the version."""

import pytest

from twinsft.generation.greedy import generate, load_merged
from twinsft.serving.model import ServedModel
from twinsft.serving.request import ServedVersion

INSTRUCTION = "Give me a tip about topic 3."


@pytest.fixture(scope="module")
def served(tiny_merged_dir):
    model, tokenizer = load_merged(tiny_merged_dir)
    return ServedModel(model, tokenizer, ServedVersion(model="m", version="7", number=7, stage="staging"), 16)


def test_the_answer_is_generate_on_the_merged_model(served, tiny_merged_dir):
    answer = served.answer(INSTRUCTION, 6)
    direct = generate(served.model, served.tokenizer, INSTRUCTION, 6, progress=False)
    assert (answer.answer, answer.new_tokens, answer.stopped_at_eos) == (
        direct.response, direct.new_tokens, direct.stopped_at_eos)
    assert 1 <= answer.new_tokens <= 6
    assert (answer.model, answer.model_version, answer.model_version_number, answer.stage) == ("m", "7", 7, "staging")


def test_the_merged_model_runs_in_the_smoke_generations_precision(served):
    import torch

    assert next(served.model.parameters()).dtype == torch.float32  # saved in 16-bit; the CPU smoke runs fp32


def test_a_caller_that_is_not_the_http_app_gets_the_same_checks(served):
    with pytest.raises(ValueError, match="cap of 16"):
        served.answer(INSTRUCTION, 17)
    with pytest.raises(ValueError, match="instruction is empty"):
        served.answer("", 4)
