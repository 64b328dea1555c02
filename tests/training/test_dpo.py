"""DPO through the training body the train_dpo step runs (training.fit with a dpo job), on the tiny Llama."""

from __future__ import annotations

import math

import pytest

from tests.helpers import TWIN_ROWS
from twinsft.config import DpoTrainingSpec, LoraSpec, ModelSpec
from twinsft.training.job import TrainingJob
from twinsft.training.launch import train_here

pytestmark = pytest.mark.dpo

BAD = ("Trust me, it always works.", "Skip the checks.", "It never fails.")


def dpo_spec(tmp_path, **overrides) -> DpoTrainingSpec:
    base = dict(learning_rate=5e-3, beta=0.5, per_device_train_batch_size=2, per_device_eval_batch_size=1,
                gradient_accumulation_steps=1, max_steps=6, warmup_steps=0, optim="adamw_torch",
                gradient_checkpointing=False, logging_steps=1, max_length=128,
                checkpoint_dir=str(tmp_path / "ckpt"))
    return DpoTrainingSpec(**{**base, **overrides})


@pytest.fixture(scope="module")
def pair_splits(tiny_model_dir):
    """Rendered pairs from the sample rows: the row's answer vs the same answer with an overconfident ending."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    from twinsft.data.formatting import split_dataset
    from twinsft.data.preference.formatting import render_pairs

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [{"prompt": r["instruction"], "chosen": r["output"], "rejected": f"{r['output']} {BAD[i % 3]}"}
            for i, r in enumerate(TWIN_ROWS * 2)]
    return split_dataset(render_pairs(Dataset.from_list(rows), tok.eos_token), test_size=0.25, seed=0)


def test_first_step_loss_is_ln2_when_policy_equals_reference(tmp_path, tiny_merged_dir, pair_splits):
    """A new LoRA has B = 0, so the policy is the reference (the adapter-disabled model): every pair's margin is
    0 and the loss is -log sigmoid(0) = ln 2."""
    train, test = pair_splits
    job = TrainingJob(train, test, ModelSpec(name=str(tiny_merged_dir), max_seq_length=128), LoraSpec(r=4, alpha=8),
                      dpo_spec(tmp_path, max_steps=2), tmp_path / "adapter", kind="dpo")
    report = train_here(job)
    assert report.train_losses[0].loss == pytest.approx(math.log(2), abs=1e-4)
    assert report.eval_loss_before == pytest.approx(math.log(2), abs=1e-4)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_trainer_loss_equals_hand_computed_dpo_loss(tmp_path, tiny_merged_dir, pair_splits):
    """-log sigmoid(beta x ((log p(c) - log ref(c)) - (log p(r) - log ref(r)))), from summed answer log-probs of
    the adapter model and the same model with the adapter disabled, equals the trainer's held-out loss."""
    import torch

    from twinsft.generation.preferences import answer_logp
    from twinsft.training.dpo import build_dpo_trainer

    train, test = pair_splits
    beta = 0.5
    setup = build_dpo_trainer(train, test, ModelSpec(name=str(tiny_merged_dir), max_seq_length=512),
                              LoraSpec(r=4, alpha=8), dpo_spec(tmp_path, beta=beta, max_length=512),
                              output_dir=tmp_path / "out")  # long enough that no pair is truncated
    model, tok = setup.trainer.model, setup.tokenizer
    assert list(model.peft_config) == ["default"]
    torch.manual_seed(0)
    with torch.no_grad():  # move the policy away from the reference
        for name, param in model.named_parameters():
            if "lora_B" in name:  # the only adapter: TRL added none for the reference
                param.normal_(0, 0.05)
    trainer_loss = setup.trainer.evaluate()["eval_loss"]  # batch size 1: the mean of the per-pair losses

    def logps(pair):
        return [answer_logp(model, tok, pair["prompt"], pair[k])[0] for k in ("chosen", "rejected")]

    model.eval()
    policy = [logps(p) for p in test]
    with model.disable_adapter():
        reference = [logps(p) for p in test]
    losses = [-torch.nn.functional.logsigmoid(torch.tensor(beta * ((pc - rc) - (pr - rr)))).item()
              for (pc, pr), (rc, rr) in zip(policy, reference, strict=True)]
    assert abs(sum(losses) / len(losses) - math.log(2)) > 1e-3  # the perturbation moved it off ln 2
    assert trainer_loss == pytest.approx(sum(losses) / len(losses), abs=1e-4)


def test_dpo_continues_the_sft_adapter(tmp_path, tiny_model_dir, adapter_dir, pair_splits):
    """start.artifact lora_adapter: the SFT adapter trains on (the reference is TRL's frozen copy of it), so the
    first loss is ln 2 although the adapter is not zero, and the saved adapter differs from the SFT one."""
    from safetensors.torch import load_file

    train, test = pair_splits
    job = TrainingJob(train, test, ModelSpec(name=str(tiny_model_dir), max_seq_length=128), LoraSpec(r=4, alpha=8),
                      dpo_spec(tmp_path, max_steps=2), tmp_path / "adapter", kind="dpo", start_adapter=adapter_dir)
    report = train_here(job)
    assert report.train_losses[0].loss == pytest.approx(math.log(2), abs=1e-4)
    before, after = load_file(adapter_dir / "adapter_model.safetensors"), load_file(
        tmp_path / "adapter" / "adapter_model.safetensors")
    assert before.keys() == after.keys()
    assert any(not (before[k] == after[k]).all() for k in before)
