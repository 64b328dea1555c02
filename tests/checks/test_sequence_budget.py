"""The rule behind preflight's template-length check: the Alpaca template plus a minimal sample must fit."""

import pytest

from twinsft.checks.sequence_budget import MIN_CONTENT_TOKENS, SPECIAL_TOKENS, check_template_fits, template_tokens
from twinsft.config import ModelSpec
from twinsft.data.alpaca import ALPACA
from twinsft.errors import ConfigError


def test_template_tokens_are_counted_exactly_with_a_local_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    want = len(tok(ALPACA.training_text("", "", ""), add_special_tokens=False)["input_ids"])
    assert template_tokens(ModelSpec(name=str(tiny_model_dir))) == (want, True)


def test_without_a_tokenizer_the_bound_is_one_token_per_byte(tiny_model_dir):
    tokens, exact = template_tokens(ModelSpec(name="some-org/not-downloaded"))
    assert not exact and tokens > len(ALPACA.training_text("", "", ""))
    assert tokens > template_tokens(ModelSpec(name=str(tiny_model_dir)))[0]


def test_the_limit_is_template_plus_minimal_sample(tiny_model_dir):
    tokens, _ = template_tokens(ModelSpec(name="some-org/not-downloaded", max_seq_length=64))
    need = tokens + SPECIAL_TOKENS + MIN_CONTENT_TOKENS
    check_template_fits(ModelSpec(name="some-org/not-downloaded", max_seq_length=need))
    with pytest.raises(ConfigError, match=f"raise it to at least {need}"):
        check_template_fits(ModelSpec(name="some-org/not-downloaded", max_seq_length=need - 1))
