"""The packed-attention loss check a benchmark case runs before it is timed."""


def test_loss_check_covers_the_first_step_weighted_by_tokens(tmp_path, tiny_model_dir):
    """The packed-attention loss check reads the first optimizer step's rows, micro-batch by micro-batch, and
    weights each by its label tokens: the result is the loss of those rows in one batch, on either path."""
    import torch
    from datasets import Dataset

    from bench.throughput.trainer_case import first_loss_check
    from tests.helpers import training_spec
    from twinsft.config import LoraSpec, ModelSpec
    from twinsft.training.fine_tune import build_trainer

    # Samples of ~4 to ~60 tokens packed into 128-token rows: rows of different fill, several samples in some.
    texts = [" ".join(["hello world"] * (2 + 3 * i)) for i in range(10)]
    spec = training_spec(tmp_path, per_device_train_batch_size=1, gradient_accumulation_steps=16)
    setup = build_trainer(Dataset.from_dict({"text": texts}), None,
                          ModelSpec(name=str(tiny_model_dir), max_seq_length=128), LoraSpec(r=4, alpha=8), spec)
    rows = [setup.trainer.train_dataset[i] for i in range(len(setup.trainer.train_dataset))]
    assert len({len(r["input_ids"]) for r in rows}) > 1  # so a plain mean of micro-batch losses would be wrong
    assert any(len(r["seq_lengths"]) > 1 for r in rows)

    check = first_loss_check(setup, tolerance=1e-4)

    batch = setup.trainer.data_collator(rows)
    with torch.no_grad():
        whole = float(setup.trainer.model(**{k: v for k, v in batch.items() if torch.is_tensor(v)},
                                          use_cache=False).loss)
    assert check["first_loss_tokens"] == int((batch["labels"][..., 1:] != -100).sum())
    assert abs(check["first_loss"] - whole) < 1e-5
    assert abs(check["first_loss_per_sample_path"] - whole) < 1e-5
    plain = sum(float(setup.trainer.model(**{k: v for k, v in setup.trainer.data_collator([r]).items()
                                             if torch.is_tensor(v)}, use_cache=False).loss) for r in rows) / len(rows)
    assert abs(plain - whole) > 1e-4  # the weighting matters on these rows
