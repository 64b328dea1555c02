"""The served pipeline's request checks: ZenML builds the request model from `serve_pipeline`'s signature, so these
are the checks the HTTP app runs (a failure is FastAPI's 422 naming the field)."""

import pytest
from pydantic import ValidationError

from twinsft.pipelines.llm_serve import serve_pipeline
from twinsft.serving.request import DEFAULT_MAX_NEW_TOKENS_CAP, check_instruction, check_max_new_tokens


@pytest.fixture(scope="module")
def request_model():
    """The model ZenML's deployment app validates `parameters` with (pipeline_definition._compute_input_model)."""
    model = serve_pipeline._compute_input_model()
    assert model is not None
    return model


def error(model, **parameters) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        model(**parameters)
    (only,) = info.value.errors()
    return only["loc"][-1], only["msg"]


def test_a_good_request_takes_the_default_budget(request_model):
    assert request_model(instruction="Give me a tip.").model_dump() == {"instruction": "Give me a tip.",
                                                                        "max_new_tokens": 256}
    # The instruction is kept as sent: surrounding whitespace is part of the prompt the model sees.
    assert request_model(instruction=" hi\n", max_new_tokens=3).model_dump()["instruction"] == " hi\n"


@pytest.mark.parametrize(("parameters", "field", "words"), [
    ({"instruction": ""}, "instruction", "at least 1 character"),
    ({"instruction": " \n\t"}, "instruction", "instruction is empty"),
    ({"instruction": "x" * 8001}, "instruction", "at most 8000 characters"),
    ({"instruction": "hi", "max_new_tokens": 0}, "max_new_tokens", "greater than or equal to 1"),
    ({"instruction": "hi", "max_new_tokens": DEFAULT_MAX_NEW_TOKENS_CAP + 1}, "max_new_tokens",
     f"cap of {DEFAULT_MAX_NEW_TOKENS_CAP}"),
    ({"instruction": "hi", "max_new_tokens": "many"}, "max_new_tokens", "valid integer"),
    ({}, "instruction", "Field required"),
    ({"instruction": "hi", "temperature": 0.7}, "temperature", "Extra inputs are not permitted"),
])
def test_bad_requests_name_the_field(request_model, parameters, field, words):
    where, message = error(request_model, **parameters)
    assert where == field and words in message


def test_the_cap_is_the_served_models(request_model, monkeypatch):
    """Inside a deployment the cap is the one `run.py serve --max-new-tokens-cap` gave the init hook."""
    from twinsft.pipelines import llm_serve

    monkeypatch.setattr(llm_serve, "served_cap", lambda: 64)
    assert request_model(instruction="hi", max_new_tokens=64).max_new_tokens == 64
    assert error(request_model, instruction="hi", max_new_tokens=65) == (
        "max_new_tokens", "Value error, max_new_tokens 65 is more than this deployment's cap of 64; ask for at most 64")


def test_the_plain_checks():
    assert check_instruction("a") == "a"
    with pytest.raises(ValueError, match="instruction is empty"):
        check_instruction("  ")
    assert check_max_new_tokens(5, 5) == 5
    with pytest.raises(ValueError, match="at least 1"):
        check_max_new_tokens(0, 5)
