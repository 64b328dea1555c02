"""The vocabulary in a GGUF file: read back by transformers as the training tokenizer, with its chat template;
pre-tokenizers named as llama.cpp names them, and refused where llama.cpp would split text differently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.export.gguf.helpers import field, reader
from tests.helpers import GENERAL_ROWS, TWIN_ROWS
from twinsft.data.alpaca import ALPACA
from twinsft.export.gguf import LLAMA3_SPLIT, GGUFUnsupported, pre_tokenizer_type, write_gguf
from twinsft.export.merge import PROBE_INSTRUCTION

pytestmark = pytest.mark.gguf


def test_transformers_reads_the_demo_tokenizer_and_chat_template_back(demo_gguf):
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from transformers import AutoTokenizer

    model_dir, result = demo_gguf
    path = Path(result.files["f16"].path)
    merged = AutoTokenizer.from_pretrained(model_dir)
    read_back = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    texts = [ALPACA.prompt(PROBE_INSTRUCTION)] + [
        ALPACA.training_text(r["instruction"], r["output"], "") for r in TWIN_ROWS[:3] + GENERAL_ROWS[:3]
    ]
    for text in texts:
        assert read_back(text, add_special_tokens=False).input_ids == merged(text, add_special_tokens=False).input_ids

    user = [{"role": "user", "content": "Name three uses of GGUF."}]
    assert read_back.apply_chat_template(user, tokenize=False) == ALPACA.prompt("Name three uses of GGUF.")
    # A whole training example, rendered from the file's own metadata (template and EOS token), as llama.cpp would.
    fields = reader(path).fields
    eos = field(fields, "tokenizer.ggml.tokens")[field(fields, "tokenizer.ggml.eos_token_id")]
    row = TWIN_ROWS[0]
    chat = [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": row["output"]}]
    template = ImmutableSandboxedEnvironment().from_string(field(fields, "tokenizer.chat_template"))
    assert template.render(messages=chat, eos_token=eos) == ALPACA.training_text(row["instruction"], row["output"], eos)
    assert eos == merged.eos_token


def test_pre_tokenizers_map_to_llama_cpp_names_and_others_are_refused():
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    assert pre_tokenizer_type(byte_level, None) == "gpt-2"
    digits = {"type": "Digits", "individual_digits": True}
    assert pre_tokenizer_type({"type": "Sequence", "pretokenizers": [digits, byte_level]}, None) == "smollm"
    split = {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": False}
    llama3 = {"type": "Sequence", "pretokenizers": [split, {**byte_level, "use_regex": False}]}
    assert pre_tokenizer_type(llama3, None) == "llama-bpe"
    assert pre_tokenizer_type(byte_level, {"type": "Sequence", "normalizers": []}) == "gpt-2"
    metaspace = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}
    for pre, normalizer in ((metaspace, None), ({**byte_level, "add_prefix_space": True}, None),
                            (byte_level, {"type": "NFC"})):
        with pytest.raises(GGUFUnsupported, match=r"^export\.gguf: .*convert_hf_to_gguf\.py$"):
            pre_tokenizer_type(pre, normalizer)


def test_a_tokenizer_llama_cpp_would_split_differently_is_refused(tiny_copy, tmp_path):
    data = json.loads((tiny_copy / "tokenizer.json").read_text())
    data["model"]["ignore_merges"] = True  # whole-word lookups: llama.cpp does them for llama-bpe only
    (tiny_copy / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(GGUFUnsupported, match=r"skips merges for whole-word tokens.*'gpt-2'"):
        write_gguf(tiny_copy, tmp_path / "x.gguf", "f16", "t")
