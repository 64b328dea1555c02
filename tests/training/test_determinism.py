"""Same seed, same loss curve on a CPU; a different seed changes it (the split's seed: data/test_formatting.py)."""

import pytest

from tests.helpers import training_spec
from twinsft.config import LoraSpec, ModelSpec
from twinsft.training import train_lora


def test_training_seed_fixes_the_loss_curve(tmp_path, tiny_model_dir, text_splits):
    train, test = text_splits
    model, lora = ModelSpec(name=str(tiny_model_dir), max_seq_length=128), LoraSpec(r=4, alpha=8)

    def curve(seed: int, name: str) -> list[float]:
        spec = training_spec(tmp_path, max_steps=4, seed=seed, checkpoint_dir=str(tmp_path / name))
        return [p.loss for p in train_lora(train, test, model, lora, spec, tmp_path / name).train_losses]

    first, again, other = curve(0, "a"), curve(0, "b"), curve(1, "c")
    assert len(first) == 4 and first == pytest.approx(again, rel=1e-6)
    assert other != pytest.approx(first, rel=1e-3)
