"""The GGUF export: files llama.cpp and Ollama load, verified against the merged model before they are kept.

The demo model (SmolLM2-135M-Instruct: real weights, a real 49k-token BPE tokenizer) is exported to f16 and q8_0
and compared with the original GGUF it was converted from; the tiny random Llama covers failures, RoPE scaling
and the wiring into the export stage.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from tests.fake_hub import FakeHub
from tests.helpers import DEMO_MODEL, GENERAL_ROWS, TWIN_ROWS, save_as_merged
from twinsft.config import ExportSpec, ModelSpec
from twinsft.export import ExportResult, export_merged
from twinsft.export import gguf as gguf_export
from twinsft.export.gguf import (
    F16_MAX_LOGIT_DIFF,
    GGUFMismatch,
    GGUFUnsupported,
    export_gguf,
    permute_for_rope,
    pre_tokenizer_type,
)
from twinsft.export.merge import PROBE_INSTRUCTION, logits, probe_ids
from twinsft.prompts import ALPACA

pytestmark = pytest.mark.gguf


def reader(path: Path):
    from gguf import GGUFReader

    return GGUFReader(path)


def field(fields, key):
    return fields[key].contents()


def leftovers(model_dir: Path) -> list[str]:
    """Temporary GGUF folders left next to the model folder."""
    return [p.name for p in model_dir.parent.iterdir() if p.name.startswith(f".{model_dir.name}-gguf-")]


@pytest.fixture(scope="module")
def demo_gguf(demo_merged_dir, tmp_path_factory):
    """The demo model exported to both files (once for this module)."""
    model_dir = tmp_path_factory.mktemp("demo-export") / "smollm2-twin"
    shutil.copytree(demo_merged_dir, model_dir)
    return model_dir, export_gguf(model_dir, ["f16", "q8_0"], "smollm2-twin")


@pytest.fixture
def tiny_copy(tiny_merged_dir, tmp_path):
    model_dir = tmp_path / "tiny-twin"
    shutil.copytree(tiny_merged_dir, model_dir)
    return model_dir


# --- the demo model --------------------------------------------------------------------------------------------


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


def test_demo_gguf_has_what_the_shipped_smollm2_gguf_has(demo_gguf):
    """Hyperparameters, vocabulary, merges and tensor names as in the GGUF the demo model ships as."""
    from gguf import GGMLQuantizationType as Q

    from twinsft.models import gguf_path

    _, result = demo_gguf
    shipped = reader(gguf_path(DEMO_MODEL))
    for quantization, weight_type in (("f16", Q.F16), ("q8_0", Q.Q8_0)):
        ours = reader(Path(result.files[quantization].path))
        keys = [k for k in shipped.fields if k.startswith(("llama.", "tokenizer."))]
        assert set(keys) <= set(ours.fields)
        same = [k for k in keys if k.startswith("llama.")] + [
            "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
            "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
            "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix",
        ]
        for key in same:
            assert field(ours.fields, key) == field(shipped.fields, key), key
        # The training tokenizer is transformers' conversion of the shipped one, which splits with GPT-2's rule
        # (digits grouped), so the file says gpt-2 where the shipped file says smollm (digits one by one).
        assert field(ours.fields, "tokenizer.ggml.pre") == "gpt-2" and field(shipped.fields, "tokenizer.ggml.pre")
        assert field(ours.fields, "general.file_type") == {"f16": 1, "q8_0": 7}[quantization]
        assert field(ours.fields, "tokenizer.chat_template") == ALPACA.chat_template()
        assert {t.name for t in ours.tensors} == {t.name for t in shipped.tensors}  # tied: no output.weight
        for t in ours.tensors:
            want = Q.F32 if t.name.endswith("_norm.weight") else weight_type
            assert t.tensor_type == want, t.name


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


# --- how tensors are written -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_head", "n_kv_head"), [(4, 4), (4, 2), (9, 3)])
def test_rope_permutation_is_the_one_transformers_gguf_reader_undoes(n_head, n_kv_head):
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    head_dim, hidden = 8, 16
    q = np.random.default_rng(0).standard_normal((n_head * head_dim, hidden)).astype(np.float32)
    k = q[: n_kv_head * head_dim]
    undo = LlamaTensorProcessor({"num_attention_heads": n_head, "num_key_value_heads": n_kv_head})
    for name, weight, heads in (("blk.0.attn_q.weight", q, n_head), ("blk.0.attn_k.weight", k, n_kv_head)):
        written = permute_for_rope(weight, heads)
        assert not np.array_equal(written, weight)
        assert np.array_equal(undo.process(written, name).weights, weight)
        # Chunks of whole heads permute on their own (how large tensors are streamed).
        half = heads // 2 * head_dim if heads > 1 else weight.shape[0]
        parts = [permute_for_rope(weight[:half], half // head_dim)]
        if half < weight.shape[0]:
            parts.append(permute_for_rope(weight[half:], (weight.shape[0] - half) // head_dim))
        assert np.array_equal(np.concatenate(parts), written)


def test_tensors_are_streamed_in_chunks_with_the_same_result(tiny_copy, tmp_path, monkeypatch):
    """A chunk far smaller than any tensor writes the same bytes as whole tensors at once."""
    whole = tmp_path / "whole.gguf"
    gguf_export.write_gguf(tiny_copy, whole, "q8_0", "t")
    monkeypatch.setattr(gguf_export, "CHUNK_ELEMENTS", 64)
    chunked = tmp_path / "chunked.gguf"
    gguf_export.write_gguf(tiny_copy, chunked, "q8_0", "t")
    assert whole.read_bytes() == chunked.read_bytes()


def test_a_sharded_save_writes_the_same_file(tiny_copy, tmp_path):
    """Large merged models are saved in several safetensors files (with an index); each tensor is found in its own."""
    from transformers import AutoModelForCausalLM

    sharded = tmp_path / "sharded"
    shutil.copytree(tiny_copy, sharded)
    for f in sharded.glob("model*.safetensors"):
        f.unlink()
    AutoModelForCausalLM.from_pretrained(tiny_copy).save_pretrained(sharded, max_shard_size="20KB")
    assert len(list(sharded.glob("model-*.safetensors"))) > 1 and (sharded / "model.safetensors.index.json").is_file()
    gguf_export.write_gguf(tiny_copy, tmp_path / "one.gguf", "f16", "t")
    gguf_export.write_gguf(sharded, tmp_path / "many.gguf", "f16", "t")
    assert (tmp_path / "one.gguf").read_bytes() == (tmp_path / "many.gguf").read_bytes()


def test_skipping_the_rope_permutation_fails_the_f16_check(tiny_copy, monkeypatch):
    monkeypatch.setattr(gguf_export, "permute_for_rope", lambda rows, n_heads: rows)
    with pytest.raises(GGUFMismatch, match="f16 GGUF file differs from the merged model"):
        export_gguf(tiny_copy, ["f16"], "tiny-twin")
    assert not (tiny_copy / "gguf").exists() and not leftovers(tiny_copy)


def test_a_corrupted_tensor_fails_verification_and_nothing_is_kept(tiny_copy, monkeypatch):
    encode = gguf_export.encode_tensor

    def one_weight_off(view, tensor):
        data = encode(view, tensor)
        if tensor.name == "blk.0.attn_v.weight":
            data[0, 0] += 1.0  # one value of one tensor
        return data

    monkeypatch.setattr(gguf_export, "encode_tensor", one_weight_off)
    (tiny_copy / "gguf").mkdir()
    (tiny_copy / "gguf" / "old.gguf").write_text("from an earlier export")
    with pytest.raises(GGUFMismatch, match=r"max logit diff .* allowed 0\.001.*no GGUF file was kept"):
        export_gguf(tiny_copy, ["q8_0", "f16"], "tiny-twin")
    assert (tiny_copy / "gguf" / "old.gguf").is_file()  # an older export stays as it was; no new file is kept
    assert not leftovers(tiny_copy)


def test_a_q8_0_greedy_mismatch_is_a_warning_and_the_files_are_kept(tiny_copy, monkeypatch):
    encode = gguf_export.encode_tensor

    class Negated:
        def __init__(self, view):
            self.view = view

        def __getitem__(self, rows):
            return -self.view[rows]

    def flip_q8_output(view, tensor):  # argmax becomes argmin: the first greedy token must differ
        return encode(Negated(view) if tensor.name == "output.weight" and tensor.qtype.name == "Q8_0" else view, tensor)

    monkeypatch.setattr(gguf_export, "encode_tensor", flip_q8_output)
    result = export_gguf(tiny_copy, ["f16", "q8_0"], "tiny-twin")
    q8 = result.files["q8_0"]
    assert not q8.greedy_match and q8.first_mismatch == 0
    assert result.files["f16"].greedy_match
    assert len(result.warnings) == 1 and "q8_0 GGUF: greedy token 0 of" in result.warnings[0]
    assert Path(q8.path).is_file() and Path(result.files["f16"].path).is_file()


def llama3_factors(inv_freq: torch.Tensor, rope: dict) -> list[float]:
    """llama.cpp's convert_hf_to_gguf rope_freqs for llama3 RoPE, written out independently of the exporter."""
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = rope["original_max_position_embeddings"]
    out = []
    for freq in inv_freq.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return out


def test_llama3_rope_scaling_is_written_as_rope_freqs_and_reproduces_the_model(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    config = LlamaConfig.from_pretrained(tiny_model_dir)
    rope = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    config.rope_parameters = rope
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model_dir = save_as_merged(model, AutoTokenizer.from_pretrained(tiny_model_dir), tmp_path / "llama3-twin")
    result = export_gguf(model_dir, ["f16"], "llama3-twin")
    path = Path(result.files["f16"].path)
    assert result.files["f16"].max_logit_diff <= F16_MAX_LOGIT_DIFF and result.files["f16"].greedy_match

    freqs = next(t for t in reader(path).tensors if t.name == "rope_freqs.weight")
    head_dim = config.hidden_size // config.num_attention_heads
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    np.testing.assert_allclose(freqs.data, llama3_factors(inv_freq, rope), rtol=1e-6)
    assert len(set(freqs.data.tolist())) > 2  # unscaled, smoothed and fully scaled frequencies all occur
    # transformers' reader alone ignores rope_freqs: without applying them the file would not match.
    plain = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    merged = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ids = probe_ids(AutoTokenizer.from_pretrained(model_dir), "cpu")
    assert (logits(plain, ids) - logits(merged, ids)).abs().max() > 100 * F16_MAX_LOGIT_DIFF


# --- what is refused ---------------------------------------------------------------------------------------------


def test_pre_tokenizers_map_to_llama_cpp_names_and_others_are_refused():
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    assert pre_tokenizer_type(byte_level, None) == "gpt-2"
    digits = {"type": "Digits", "individual_digits": True}
    assert pre_tokenizer_type({"type": "Sequence", "pretokenizers": [digits, byte_level]}, None) == "smollm"
    split = {"type": "Split", "pattern": {"Regex": gguf_export.LLAMA3_SPLIT}, "behavior": "Isolated", "invert": False}
    llama3 = {"type": "Sequence", "pretokenizers": [split, {**byte_level, "use_regex": False}]}
    assert pre_tokenizer_type(llama3, None) == "llama-bpe"
    assert pre_tokenizer_type(byte_level, {"type": "Sequence", "normalizers": []}) == "gpt-2"
    metaspace = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}
    for pre, normalizer in ((metaspace, None), ({**byte_level, "add_prefix_space": True}, None),
                            (byte_level, {"type": "NFC"})):
        with pytest.raises(GGUFUnsupported, match=r"^export\.gguf: .*convert_hf_to_gguf\.py$"):
            pre_tokenizer_type(pre, normalizer)


def test_a_model_that_is_not_llama_is_one_clear_error(tiny_copy):
    config = json.loads((tiny_copy / "config.json").read_text())
    (tiny_copy / "config.json").write_text(json.dumps({**config, "model_type": "mistral"}))
    with pytest.raises(GGUFUnsupported, match=r"model type 'mistral' is not llama.*Set export\.gguf: \[\]"):
        export_gguf(tiny_copy, ["f16"], "tiny-twin")
    assert not (tiny_copy / "gguf").exists() and not leftovers(tiny_copy)


def test_a_tokenizer_llama_cpp_would_split_differently_is_refused(tiny_copy, tmp_path):
    data = json.loads((tiny_copy / "tokenizer.json").read_text())
    data["model"]["ignore_merges"] = True  # whole-word lookups: llama.cpp does them for llama-bpe only
    (tiny_copy / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(GGUFUnsupported, match=r"skips merges for whole-word tokens.*'gpt-2'"):
        gguf_export.write_gguf(tiny_copy, tmp_path / "x.gguf", "f16", "t")


def test_export_spec_takes_known_quantizations_once():
    assert ExportSpec().gguf == [] and ExportSpec(gguf=["q8_0", "f16"]).gguf == ["q8_0", "f16"]
    assert ExportSpec(gguf="q8_0").gguf == ["q8_0"]
    with pytest.raises(ValidationError, match="unknown GGUF quantization 'q4_0'; use f16 or q8_0"):
        ExportSpec(gguf=["q4_0"])
    with pytest.raises(ValidationError, match="'f16' is listed twice"):
        ExportSpec(gguf=["f16", "q8_0", "f16"])


# --- the export stage --------------------------------------------------------------------------------------------


def test_export_merged_writes_verified_gguf_records_it_and_adds_it_to_the_card(tiny_model_dir, adapter_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    export = ExportSpec(output_dir=str(tmp_path / "twin"), gguf=["q8_0", "f16"])
    result = export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, export, card="# Fine-tuned\n")
    local = tmp_path / "twin"
    assert list(result.gguf) == ["q8_0", "f16"]
    for quantization, check in result.gguf.items():
        assert Path(check.path) == local / "gguf" / f"twin-{quantization}.gguf"
        assert Path(check.path).stat().st_size == check.size_bytes
    assert result.gguf["f16"].max_logit_diff <= F16_MAX_LOGIT_DIFF and result.gguf["f16"].greedy_match
    assert result.gguf_modelfile == str(local / "gguf" / "Modelfile") and result.gguf_warnings == []
    assert "FROM ./twin-q8_0.gguf\n" in Path(result.gguf_modelfile).read_text()  # the first listed
    card = (local / "README.md").read_text()
    assert card.startswith("# Fine-tuned\n") and "## GGUF (llama.cpp, Ollama)" in card
    assert "`gguf/twin-q8_0.gguf`: q8_0" in card and "llama-cli -m gguf/twin-q8_0.gguf" in card
    assert "ollama create" in card and not leftovers(local)
    metadata = result.model_dump(exclude_none=True)  # what push_merged logs
    assert json.loads(json.dumps(metadata))["gguf"]["f16"]["greedy_match"] is True
    assert ExportResult.model_validate_json(result.model_dump_json()) == result
    AutoModelForCausalLM.from_pretrained(local)  # the gguf/ folder does not disturb the transformers model


def test_without_gguf_nothing_changes(tiny_model_dir, adapter_dir, tmp_path):
    result = export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, ExportSpec(output_dir=str(tmp_path / "m")))
    assert result.gguf is None and not (tmp_path / "m" / "gguf").exists()
    assert "gguf" not in result.model_dump(exclude_none=True)


def test_push_uploads_the_gguf_folder_with_the_model_and_card(tiny_model_dir, adapter_dir, tmp_path, monkeypatch):
    import huggingface_hub

    hub = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", hub.api)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    export = ExportSpec(output_dir=str(tmp_path / "m"), push=True, repo_id="me/twin", gguf=["q8_0"])
    result = export_merged(ModelSpec(name=str(tiny_model_dir)), adapter_dir, export, run_name="run-7", card="# c\n")
    assert result.pushed
    files = hub.commits[-1]["files"]
    assert {"gguf/twin-q8_0.gguf", "gguf/Modelfile", "README.md", "model.safetensors"} <= set(files)
    assert "GGUF q8_0" in hub.commits[-1]["message"] and "run-7" in hub.commits[-1]["message"]
    assert b"gguf/twin-q8_0.gguf" in hub.repos["me/twin"]["files"]["README.md"]
