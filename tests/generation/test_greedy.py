"""Smoke generation with the Alpaca prompt: greedy, and it says why it stopped."""

from twinsft.config import ModelSpec
from twinsft.data.alpaca import ALPACA
from twinsft.generation.greedy import generate, load_adapted


def test_generate_uses_the_alpaca_prompt_and_reports_stop(tiny_model_dir, adapter_dir):
    model, tok = load_adapted(ModelSpec(name=str(tiny_model_dir)), adapter_dir)
    out = generate(model, tok, "Give me a tip about topic 3.", max_new_tokens=6)
    assert out.prompt == ALPACA.prompt("Give me a tip about topic 3.")
    assert 1 <= out.new_tokens <= 6
    if not out.stopped_at_eos:
        assert out.new_tokens == 6  # only the token budget may end a generation that did not stop
    again = generate(model, tok, "Give me a tip about topic 3.", max_new_tokens=6)
    assert again.response == out.response  # greedy
