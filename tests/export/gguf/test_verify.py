"""The verifier: a written file that does not reproduce the merged model fails the export or warns."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.export.gguf.helpers import leftovers
from twinsft.export.gguf import GGUFMismatch, export_gguf, tensors, write

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

