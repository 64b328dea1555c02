"""The training benchmark's case names and its FLOPs per token, against the memory plan's model shape."""

import pytest
from transformers import LlamaConfig

from bench.train_throughput import flops_per_token, parse_case
from twinsft.config import LoraSpec
from twinsft.training.memory_plan import ModelShape

TARGETS = LoraSpec().target_modules


def test_benchmark_flops_and_cases(tiny_model_dir):
    from bench.train_throughput import TARGETS as BENCH_TARGETS

    assert BENCH_TARGETS == TARGETS
    assert parse_case("unsloth-lora-mb4-nockpt") == {"name": "unsloth-lora-mb4-nockpt", "kind": "unsloth",
                                                     "mode": "lora", "micro_batch": 4, "checkpointing": False,
                                                     "plan": False, "hfcount": False, "lengths": "one-sample"}
    assert parse_case("unsloth-lora-plan-hfcount")["hfcount"]
    for wrong in ("bare-lora-plan", "bare-lora-mb2-hfcount", "unsloth-lora-hfcount-plan"):
        with pytest.raises(SystemExit):
            parse_case(wrong)
    shape = ModelShape.from_config(LlamaConfig.from_pretrained(tiny_model_dir))
    expected = 4 * (shape.linear_params + shape.vocab * shape.hidden) + 6 * shape.lora_params(32, TARGETS) \
        + 12 * shape.layers * shape.hidden * 2048
    assert flops_per_token(tiny_model_dir) == expected


def test_length_cases_and_their_twins(capsys):
    from bench.train_throughput import twin_of

    assert parse_case("unsloth-lora-plan-len350")["lengths"] == "len350"
    assert parse_case("trl-qlora-mb4-nockpt-hist")["lengths"] == "hist"
    assert parse_case("unsloth-lora-plan")["lengths"] == "one-sample"
    assert twin_of("unsloth-qlora-plan-len350") == "unsloth-qlora-plan" and twin_of("trl-lora-hist") == "trl-lora"
    assert twin_of("trl-lora") is None
    for wrong in ("bare-lora-mb8-len350", "unsloth-lora-len350-plan", "unsloth-lora-len5", "trl-lora-len100-hist"):
        with pytest.raises(SystemExit) as exit_:
            parse_case(wrong)
        assert exit_.value.code == 2
    assert capsys.readouterr().err.count("\n") == 4  # one line each


def test_lognormal_lengths_by_median():
    from bench.train_throughput import MAX_LEN, MIN_LEN, sample_lengths

    for median in (100, 350, 1000):
        lengths = sorted(sample_lengths(f"len{median}", 3000 * median))  # ~2,000 samples
        assert sum(lengths) >= 3000 * median and MIN_LEN <= lengths[0] and lengths[-1] <= MAX_LEN
        assert abs(lengths[len(lengths) // 2] - median) < 0.08 * median
    assert sample_lengths("len350", 50_000) == sample_lengths("len350", 50_000)  # seeded


def test_histogram_file_from_a_mix_drives_the_lengths(tmp_path, tiny_model_dir, data_files):
    """The mix's histogram as the dataset card counts it, exported, read back and sampled by the benchmark."""
    import json

    from bench.length_histogram import main as export
    from bench.train_throughput import sample_lengths
    from tests.helpers import tiny_parameters, write_config
    from twinsft.data.dataset_card import read_length_histogram

    config = write_config(tmp_path / "run.yaml", tiny_parameters(tiny_model_dir, *data_files, tmp_path))
    assert export(["--config", str(config), "--out", str(tmp_path / "h.json"), "--bins", "4"]) == 0
    saved = json.loads((tmp_path / "h.json").read_text())
    buckets = read_length_histogram(tmp_path / "h.json")
    assert len(buckets) == 4 and sum(n for _, _, n in buckets) == saved["rows"] > 0
    assert buckets[0][0] == saved["summary"]["min"] and buckets[-1][1] >= saved["summary"]["max"]

    drawn = sample_lengths("hist", 20_000, histogram=[(10, 19, 3), (100, 109, 0), (200, 200, 1)])
    assert set(drawn) <= set(range(10, 20)) | {200}
    assert 0.65 < sum(n < 20 for n in drawn) / len(drawn) < 0.85  # a bucket is drawn by its share of rows

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**saved, "buckets": [[5, 2, 1]]}))
    with pytest.raises(ValueError, match="'buckets' must be"):
        read_length_histogram(bad)
    assert export(["--config", str(tmp_path / "missing.yaml"), "--out", str(bad)]) == 2


def test_loss_check_covers_the_first_step_weighted_by_tokens(tmp_path, tiny_model_dir):
    """The packed-attention loss check reads the first optimizer step's rows, micro-batch by micro-batch, and
    weights each by its label tokens: the result is the loss of those rows in one batch, on either path."""
    import torch
    from datasets import Dataset

    from bench.train_throughput import first_loss_check
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
