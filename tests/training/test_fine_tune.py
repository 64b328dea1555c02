"""LoRA SFT on the tiny model through the same function the train_sft step calls."""

import pytest
import torch

from tests.helpers import training_spec
from twinsft.config import LoraSpec, ModelSpec
from twinsft.training import train_lora


def test_lora_training_lowers_held_out_loss_and_saves_adapter(tmp_path, tiny_model_dir, text_splits):
    train, test = text_splits
    report = train_lora(
        train,
        test,
        ModelSpec(name=str(tiny_model_dir), max_seq_length=128),
        LoraSpec(r=8, alpha=16),
        training_spec(tmp_path),
        tmp_path / "adapter",
    )
    assert report.backend == "trl" and report.mode == "lora" and report.precision == "fp32"
    assert report.steps == 16 and len(report.train_losses) == 16
    assert report.eval_loss_after < report.eval_loss_before * 0.9
    assert report.train_tokens > 0 and report.tokens_per_s > 0
    assert 0 < report.trainable_params < report.total_params
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "adapter" / "tokenizer.json").is_file()
    import json

    adapter_cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter_cfg["r"] == 8 and sorted(adapter_cfg["target_modules"]) == sorted(LoraSpec().target_modules)


def test_same_seed_same_losses(tmp_path, tiny_model_dir, text_splits):
    train, test = text_splits
    args = (ModelSpec(name=str(tiny_model_dir), max_seq_length=128), LoraSpec(r=4, alpha=8))
    runs = [
        train_lora(train, test, *args, training_spec(tmp_path, max_steps=3), tmp_path / f"a{i}") for i in range(2)
    ]
    assert [p.loss for p in runs[0].train_losses] == pytest.approx([p.loss for p in runs[1].train_losses], rel=1e-5)


def test_packed_samples_do_not_attend_to_each_other(tiny_model_dir):
    """The padding-free collator the trainer uses + SDPA: a sample's logits are the same packed or alone."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    a = tok("Tip 1: measure before you tune.")["input_ids"]
    b = tok("What is 3 plus 3? 3 plus 3 is 6.")["input_ids"]
    collator = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)
    batch = collator([{"input_ids": a}, {"input_ids": b}])
    assert batch["input_ids"].shape == (1, len(a) + len(b))
    assert batch["position_ids"][0, len(a)].item() == 0  # positions restart at the second sample
    with torch.no_grad():
        # use_cache=False as in training (TRL sets it): with a KV cache transformers skips the packed mask.
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        alone_b = model(input_ids=torch.tensor([b])).logits[0]
        contaminated = model(input_ids=batch["input_ids"]).logits[0]  # no position_ids: one long sequence
    torch.testing.assert_close(packed[len(a):], alone_b, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(contaminated[len(a):], alone_b, atol=1e-3)


def test_qlora_without_cuda_is_a_clear_error(tmp_path, tiny_model_dir, text_splits):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    from twinsft.errors import ConfigError

    train, test = text_splits
    with pytest.raises(ConfigError, match="load_in_4bit \\(QLoRA\\) needs a CUDA GPU"):
        train_lora(
            train, test, ModelSpec(name=str(tiny_model_dir), load_in_4bit=True), LoraSpec(),
            training_spec(tmp_path), tmp_path / "a",
        )


@pytest.mark.parametrize("packing", [True, False])
def test_tokens_seen_are_exactly_the_training_tokens(tmp_path, tiny_model_dir, text_splits, packing):
    """Packed batches are counted on the host (no GPU sync); padded ones still count only real tokens."""
    from twinsft.training.fine_tune import build_trainer
    from twinsft.training.trainer import sft_trainer_class

    train, _ = text_splits
    setup = build_trainer(
        train, None, ModelSpec(name=str(tiny_model_dir), max_seq_length=128), LoraSpec(r=4, alpha=8),
        training_spec(tmp_path, max_steps=-1, num_train_epochs=2, packing=packing, per_device_train_batch_size=3),
    )
    trainer = setup.trainer
    assert isinstance(trainer, sft_trainer_class())
    trainer.train()
    rows = trainer.train_dataset["input_ids"]  # tokenized (and packed, when packing) by SFTTrainer
    assert packing == (len(rows) < len(train))
    assert trainer.state.num_input_tokens_seen == 2 * sum(len(r) for r in rows)


def test_collating_in_worker_processes_trains_on_the_same_batches(tmp_path, tiny_model_dir, text_splits):
    """dataloader_workers (auto: 2 on CUDA) only moves collation out of the training process."""
    train, test = text_splits
    args = (ModelSpec(name=str(tiny_model_dir), max_seq_length=128), LoraSpec(r=4, alpha=8))
    runs = [
        train_lora(train, test, *args, training_spec(tmp_path, max_steps=4, dataloader_workers=w), tmp_path / f"w{w}")
        for w in (0, 2)
    ]
    assert [p.loss for p in runs[0].train_losses] == pytest.approx([p.loss for p in runs[1].train_losses], rel=1e-5)
    assert runs[0].train_tokens == runs[1].train_tokens > 0
