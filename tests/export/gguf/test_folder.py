"""`export_gguf`: the verified gguf/ folder of the demo model, its Modelfile, and what is refused before writing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.export.gguf.helpers import leftovers
from twinsft.data.alpaca import ALPACA
from twinsft.export.gguf import F16_MAX_LOGIT_DIFF, GGUFUnsupported, export_gguf
from twinsft.export.merge import PROBE_INSTRUCTION

pytestmark = pytest.mark.gguf


def test_demo_model_exports_to_f16_and_q8_0_that_reproduce_the_merged_model(demo_gguf):
    model_dir, result = demo_gguf
    f16, q8 = result.files["f16"], result.files["q8_0"]
    print(f"\nf16: max logit diff {f16.max_logit_diff:.3g}, greedy match {f16.greedy_match}, {f16.size_bytes:,} bytes")
    print(f"q8_0: max logit diff {q8.max_logit_diff:.3g}, greedy match {q8.greedy_match}, {q8.size_bytes:,} bytes")
    assert f16.max_logit_diff <= F16_MAX_LOGIT_DIFF and f16.greedy_match
    assert q8.greedy_match and q8.first_mismatch is None and result.warnings == []
    assert result.verified_tokens > 0
    assert Path(result.dir) == model_dir / "gguf" and not leftovers(model_dir)
    assert sorted(p.name for p in Path(result.dir).iterdir()) == [
        "Modelfile", "smollm2-twin-f16.gguf", "smollm2-twin-q8_0.gguf"
    ]
    for check in (f16, q8):
        assert Path(check.path).stat().st_size == check.size_bytes
    # f16 keeps 2 bytes a weight; q8_0 34 bytes per 32 weights (norms stay f32 in both).
    assert 0.5 < q8.size_bytes / f16.size_bytes < 0.56


def render_go_prompt(template: str, prompt: str) -> str:
    """The one piece of Go's text/template the Modelfile uses: `{{ .Prompt }}`."""
    return re.sub(r"\{\{\s*\.Prompt\s*\}\}", lambda _: prompt, template)


def test_modelfile_renders_the_training_prompt_and_stops_at_eos(demo_gguf):
    model_dir, result = demo_gguf
    text = Path(result.modelfile).read_text()
    source = re.search(r"^FROM (\S+)$", text, re.M).group(1)
    assert source == "./smollm2-twin-f16.gguf" and (Path(result.dir) / source).is_file()  # the first one listed
    template = re.search(r'^TEMPLATE """(.*?)"""$', text, re.M | re.S).group(1)
    for instruction in ("Write a haiku about GGUF.", PROBE_INSTRUCTION, 'Quote "this" {exactly}.'):
        assert render_go_prompt(template, instruction) == ALPACA.prompt(instruction)
    stop = json.loads(re.search(r"^PARAMETER stop (.+)$", text, re.M).group(1))
    assert stop == "<|im_end|>" == json.loads((model_dir / "tokenizer_config.json").read_text())["eos_token"]


def test_a_model_that_is_not_llama_is_one_clear_error(tiny_copy):
    config = json.loads((tiny_copy / "config.json").read_text())
    (tiny_copy / "config.json").write_text(json.dumps({**config, "model_type": "mistral"}))
    with pytest.raises(GGUFUnsupported, match=r"model type 'mistral' is not llama.*Set export\.gguf: \[\]"):
        export_gguf(tiny_copy, ["f16"], "tiny-twin")
    assert not (tiny_copy / "gguf").exists() and not leftovers(tiny_copy)
