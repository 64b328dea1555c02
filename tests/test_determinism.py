"""Same seed, same split and loss curve on a CPU; a different seed changes them."""

import pytest
from datasets import Dataset

from tests.helpers import GENERAL_ROWS, TWIN_ROWS
from tests.test_training import text_splits, training_spec  # noqa: F401  (module fixture)
from twinsft.config import LoraSpec, ModelSpec
from twinsft.data.formatting import render_alpaca, split_dataset
from twinsft.data.hashing import content_hash
from twinsft.training import train_lora


def test_split_depends_only_on_the_seed():
    ds = render_alpaca(Dataset.from_list(TWIN_ROWS + GENERAL_ROWS), eos_token="</s>")
    a, b, c = (split_dataset(ds, test_size=0.2, seed=s) for s in (0, 0, 1))
    assert [content_hash(x) for x in a] == [content_hash(x) for x in b]
    assert list(a[1]["text"]) == list(b[1]["text"])
    assert set(a[1]["text"]) != set(c[1]["text"])
    assert set(c[0]["text"]) | set(c[1]["text"]) == set(ds["text"])


def test_training_seed_fixes_the_loss_curve(tmp_path, tiny_model_dir, text_splits):
    train, test = text_splits
    model, lora = ModelSpec(name=str(tiny_model_dir), max_seq_length=128), LoraSpec(r=4, alpha=8)

    def curve(seed: int, name: str) -> list[float]:
        spec = training_spec(tmp_path, max_steps=4, seed=seed, checkpoint_dir=str(tmp_path / name))
        return [p.loss for p in train_lora(train, test, model, lora, spec, tmp_path / name).train_losses]

    first, again, other = curve(0, "a"), curve(0, "b"), curve(1, "c")
    assert len(first) == 4 and first == pytest.approx(again, rel=1e-6)
    assert other != pytest.approx(first, rel=1e-3)
