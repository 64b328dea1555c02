"""After training on an FP8 base (model.base_precision), the export is still the 16-bit base plus the LoRA delta:
the merge check holds it to the adapter on the 16-bit base, and merging onto the FP8-rounded base would fail it."""

from __future__ import annotations

import pytest
import torch

from twinsft.config import LLAMA_LINEAR_MODULES, ExportSpec, ModelSpec
from twinsft.export import export_merged
from twinsft.export.merge import MERGE_TOLERANCE, ExportMismatch, check_merge


def fp8_rounded(weight: torch.Tensor) -> torch.Tensor:
    """What Unsloth's load_in_fp8=True (torchao PerRow) multiplies: e4m3 with one fp32 scale per output row."""
    scale = (weight.abs().amax(dim=1, keepdim=True).float() / 448.0).clamp(min=1e-12)
    return ((weight.float() / scale).to(torch.float8_e4m3fn).float() * scale).to(weight.dtype)


def fp8_base(model_dir):
    """The tiny Llama with its decoder projections FP8-rounded; embeddings, norms and the LM head stay as they are,
    as torchao leaves them."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rounded = 0
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in LLAMA_LINEAR_MODULES:
                module.weight.copy_(fp8_rounded(module.weight))
                rounded += 1
    assert rounded == 7 * model.config.num_hidden_layers
    return model


def test_merging_onto_the_fp8_rounded_base_would_fail_the_merge_check(tiny_model_dir, adapter_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 17, 42, 99, 7, 3, 64, 21]])

    def logits(model):
        with torch.no_grad():
            return model(input_ids=ids).logits

    sixteen_bit = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    want = logits(PeftModel.from_pretrained(sixteen_bit, str(adapter_dir)).eval())  # the adapter on the 16-bit base

    # What the export does after an FP8-base run: the 16-bit checkpoint plus the delta. It passes, as always.
    result = export_merged(ModelSpec(name=str(tiny_model_dir), base_precision="fp8"), adapter_dir,
                           ExportSpec(output_dir=str(tmp_path / "merged")))
    assert result.merge_rel_logit_diff < 1e-5  # fp32: ~1e-6

    # Merging the same adapter onto the FP8-rounded base instead: the check against the 16-bit reference fails.
    wrong = PeftModel.from_pretrained(fp8_base(tiny_model_dir), str(adapter_dir)).merge_and_unload().eval()
    rel = float((logits(wrong) - want).norm() / want.norm())
    assert rel > 10 * MERGE_TOLERANCE["float32"], rel  # 3.5e-2 here
    with pytest.raises(ExportMismatch, match=r"differ from the adapter on the 16-bit base by .* \(relative\)"):
        check_merge(logits(wrong), want, torch.float32)
    check_merge(want.clone(), want, torch.float32)  # the right merge passes the same check


def test_the_merge_is_the_same_whatever_base_training_multiplied(tiny_model_dir, adapter_dir, tmp_path):
    """base_precision changes training only: the merged files of an fp8 and an auto run of one adapter are equal."""
    for precision in ("auto", "fp8_block"):
        export_merged(ModelSpec(name=str(tiny_model_dir), base_precision=precision), adapter_dir,
                      ExportSpec(output_dir=str(tmp_path / precision)))
    assert ((tmp_path / "auto" / "model.safetensors").read_bytes()
            == (tmp_path / "fp8_block" / "model.safetensors").read_bytes())


def test_a_bf16_merge_passes_its_own_bound(tiny_model_dir, adapter_dir):
    """A GPU merges in bf16: its rounding of W + BA (~1e-2 here, with the fixture's large adapter) must stay inside
    the 16-bit bound, or every GPU export would be refused."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 17, 42, 99, 7, 3, 64, 21]])
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16),
                                        str(adapter_dir)).eval()
    with torch.no_grad():
        want = adapted(input_ids=ids).logits.float()
        got = adapted.merge_and_unload()(input_ids=ids).logits.float()
    rel = check_merge(got, want, torch.bfloat16)
    assert MERGE_TOLERANCE["float32"] < rel < MERGE_TOLERANCE["16-bit"] / 3  # real rounding, with room to spare
