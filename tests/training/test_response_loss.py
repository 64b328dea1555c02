"""training.loss_on: `response` puts the loss on the response and its EOS only, packed padding-free; `all` (the
reference recipe) keeps every token, ids, labels and loss exactly as before the option existed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from tests.helpers import GENERAL_ROWS, TWIN_ROWS, training_spec
from twinsft.config import LoraSpec, ModelSpec
from twinsft.data.alpaca import ALPACA
from twinsft.errors import ConfigError
from twinsft.training import train_lora
from twinsft.training.fine_tune import build_trainer
from twinsft.training.response_loss import check_prompts_masked, check_template, check_token_boundary

LORA = LoraSpec(r=4, alpha=8)


def tiny(model_dir) -> ModelSpec:
    return ModelSpec(name=str(model_dir), max_seq_length=128)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def prompt_lengths(tokenizer) -> dict[tuple[int, ...], int]:
    """Each sample's token ids -> how many of them are its prompt, from the rows' instruction and output alone
    (not from the training text the code under test cuts)."""
    lengths = {}
    for row in TWIN_ROWS + GENERAL_ROWS:
        prompt = tokenizer(ALPACA.prompt(row["instruction"]))["input_ids"]
        text = tokenizer(ALPACA.training_text(row["instruction"], row["output"], tokenizer.eos_token))["input_ids"]
        assert text[: len(prompt)] == prompt  # the prompt ends at a token boundary: the mask can be exact
        lengths[tuple(text)] = len(prompt)
    return lengths


def packed_samples(position_ids: torch.Tensor) -> list[tuple[int, int]]:
    """(start, end) of each sample in a padding-free row: positions restart at 0 where a sample begins."""
    starts = (position_ids == 0).nonzero().flatten().tolist()
    return list(zip(starts, [*starts[1:], len(position_ids)], strict=True))


def mean_cross_entropy(model, batch: dict, first_target: Callable[[tuple[int, ...]], int]) -> float:
    """Plain torch: each packed sample run alone, next-token cross-entropy over its tokens from `first_target(ids)`
    on, averaged over all those tokens of the batch."""
    total, count = 0.0, 0
    ids = batch["input_ids"][0]
    for start, end in packed_samples(batch["position_ids"][0]):
        sample = ids[start:end].to(model.device)
        first = first_target(tuple(sample.tolist()))
        logits = model(input_ids=sample[None]).logits[0]
        # The logits at position i predict token i + 1.
        total += F.cross_entropy(logits[first - 1 : -1].float(), sample[first:], reduction="sum").item()
        count += len(sample) - first
    return total / count


def trainer_loss(trainer, batch: dict) -> float:
    """The loss SFTTrainer computes for a batch (what it trains on and averages in evaluation)."""
    model = trainer.model.eval()
    with torch.no_grad():
        return trainer.compute_loss(model, {k: v.to(model.device) for k, v in batch.items()}).item()


def test_packed_batches_carry_loss_only_on_response_and_eos(tmp_path, tiny_model_dir, text_splits, prompt_lengths,
                                                             tokenizer):
    train, _ = text_splits
    setup = build_trainer(train, None, tiny(tiny_model_dir), LORA, training_spec(tmp_path, loss_on="response"))
    samples = 0
    for batch in setup.trainer.get_train_dataloader():
        assert set(batch) == {"input_ids", "labels", "position_ids"}  # padding-free: one row, no attention_mask
        ids, labels, positions = batch["input_ids"][0], batch["labels"][0], batch["position_ids"][0]
        for start, end in packed_samples(positions):
            sample = ids[start:end].tolist()
            n_prompt = prompt_lengths[tuple(sample)]
            assert sample[-1] == tokenizer.eos_token_id
            assert labels[start : start + n_prompt].eq(-100).all(), "a prompt token carries loss"
            assert labels[start + n_prompt : end].tolist() == sample[n_prompt:], "a response token carries no loss"
            samples += 1
    # Every training row exactly once, packed: fewer rows than samples.
    assert samples == len(train) > len(setup.trainer.train_dataset)


def test_trainer_loss_is_the_mean_cross_entropy_over_response_tokens(tmp_path, tiny_model_dir, text_splits,
                                                                      prompt_lengths):
    """Hand-computed with each sample alone: the packed loss also shows that no sample attends to another."""
    train, _ = text_splits
    setup = build_trainer(train, None, tiny(tiny_model_dir), LORA, training_spec(tmp_path, loss_on="response"))
    batch = next(iter(setup.trainer.get_train_dataloader()))
    assert len(packed_samples(batch["position_ids"][0])) > 2
    loss = trainer_loss(setup.trainer, batch)
    with torch.no_grad():
        expected = mean_cross_entropy(setup.trainer.model, batch, prompt_lengths.__getitem__)
    assert loss == pytest.approx(expected, abs=1e-5)


def test_all_keeps_todays_tokens_labels_and_loss(tmp_path, tiny_model_dir, text_splits):
    """`all` against the path as it was before `loss_on`: the `text` rows as they are, completion_only_loss unset."""
    from twinsft.training.sft_config import sft_config
    from twinsft.training.trainer import sft_trainer_class

    train, test = text_splits
    setup = build_trainer(train, test, tiny(tiny_model_dir), LORA, training_spec(tmp_path, loss_on="all"))
    args = sft_config(tiny(tiny_model_dir), setup.training, setup.precision, setup.backend, tmp_path / "before")
    args.completion_only_loss = None
    before = sft_trainer_class()(model=setup.trainer.model, args=args, train_dataset=train, eval_dataset=test,
                                 processing_class=setup.tokenizer)
    now = setup.trainer
    assert now.train_dataset[:] == before.train_dataset[:]  # input_ids, labels, seq_lengths: the same packing
    assert now.eval_dataset[:] == before.eval_dataset[:]
    assert all(row["labels"] == row["input_ids"] for row in now.train_dataset)  # every token carries the loss
    batch, batch_before = next(iter(now.get_train_dataloader())), next(iter(before.get_train_dataloader()))
    assert batch.keys() == batch_before.keys() and all(torch.equal(batch[k], batch_before[k]) for k in batch)
    assert trainer_loss(now, batch) == pytest.approx(trainer_loss(before, batch_before), abs=1e-6)
    # Every token but each sample's first, which nothing before it in the sample predicts.
    with torch.no_grad():
        expected = mean_cross_entropy(now.model, batch, lambda ids: 1)
    assert trainer_loss(now, batch) == pytest.approx(expected, abs=1e-5)
    assert now.evaluate()["eval_loss"] == pytest.approx(before.evaluate()["eval_loss"], abs=1e-6)


def test_response_changes_only_the_labels(tmp_path, tiny_model_dir, text_splits):
    """The same token ids packed the same way; the prompts' labels become -100, nothing else changes."""
    train, _ = text_splits
    data = {loss_on: build_trainer(train, None, tiny(tiny_model_dir), LORA,
                                   training_spec(tmp_path, loss_on=loss_on)).trainer.train_dataset[:]
            for loss_on in ("all", "response")}
    assert data["response"]["input_ids"] == data["all"]["input_ids"]
    assert data["response"]["seq_lengths"] == data["all"]["seq_lengths"]
    for ours, every in zip(data["response"]["labels"], data["all"]["labels"], strict=True):
        assert all(label in (-100, full) for label, full in zip(ours, every, strict=True))
        assert 0 < ours.count(-100) < len(ours)


def test_held_out_loss_is_the_response_loss(tmp_path, tiny_model_dir, text_splits, prompt_lengths):
    train, test = text_splits
    spec = training_spec(tmp_path, loss_on="response", per_device_eval_batch_size=len(test))
    trainer = build_trainer(train, test, tiny(tiny_model_dir), LORA, spec).trainer
    batches = list(trainer.get_eval_dataloader())
    assert len(batches) == 1  # the whole held-out set in one packed batch: its loss is one token mean
    assert len(packed_samples(batches[0]["position_ids"][0])) == len(test)
    eval_loss = trainer.evaluate()["eval_loss"]
    with torch.no_grad():
        response = mean_cross_entropy(trainer.model, batches[0], prompt_lengths.__getitem__)
        every_token = mean_cross_entropy(trainer.model, batches[0], lambda ids: 1)
    assert eval_loss == pytest.approx(response, abs=1e-5)
    assert abs(eval_loss - every_token) > 1e-3  # a different number from the loss over the whole text


@pytest.mark.parametrize("loss_on", ["all", "response"])
def test_training_lowers_the_held_out_loss(tmp_path, tiny_model_dir, text_splits, loss_on):
    train, test = text_splits
    report = train_lora(train, test, tiny(tiny_model_dir), LoraSpec(r=8, alpha=16),
                        training_spec(tmp_path, loss_on=loss_on), tmp_path / "adapter")
    print(f"loss_on={loss_on}: held-out {report.eval_loss_name} {report.eval_loss_before:.6f} -> "
          f"{report.eval_loss_after:.6f} ({report.eval_loss_change}), mean train loss {report.train_loss:.6f}")
    assert report.loss_on == loss_on and report.summary()["loss_on"] == loss_on
    assert report.eval_loss_name == {"all": "eval loss", "response": "response loss"}[loss_on]
    assert report.steps == 16 and report.eval_loss_after < report.eval_loss_before * 0.9
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_the_template_must_mark_where_the_response_starts():
    check_template(ALPACA)
    with pytest.raises(ConfigError, match=r"has none; set training\.loss_on: all"):
        check_template(dataclasses.replace(ALPACA, response_marker=""))
    with pytest.raises(ConfigError, match="also occurs before the instruction"):
        check_template(dataclasses.replace(ALPACA, preamble="Answer after ### Response:\n."))


def test_the_prompt_must_end_at_a_token_boundary(tokenizer):
    def encode(text: str) -> list[int]:
        return tokenizer(text)["input_ids"]

    check_token_boundary(encode, ALPACA, how="with the tiny tokenizer")
    with pytest.raises(ConfigError, match="does not end at a token boundary with the tiny tokenizer"):
        check_token_boundary(encode, dataclasses.replace(ALPACA, response_marker="### Response: "),
                             how="with the tiny tokenizer")


def test_a_trainer_that_left_the_prompts_in_the_loss_is_refused():
    """What the guard catches: labels that mask only each sample's first token (as `all`, or a trainer that
    replaced TRL's data preparation and dropped the mask)."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    collator = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)
    every_token = SimpleNamespace(data_collator=collator,
                                  train_dataset=[{"input_ids": [5, 6, 7, 8, 9], "seq_lengths": [3, 2]}])
    with pytest.raises(ConfigError, match=r"left the prompt tokens in the loss; use training\.backend: trl"):
        check_prompts_masked(every_token, "unsloth")
    masked = SimpleNamespace(data_collator=collator, train_dataset=[
        {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, -100, 7, -100, 9], "seq_lengths": [3, 2]}])
    check_prompts_masked(masked, "trl")
