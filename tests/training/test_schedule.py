"""The warm-up fits the run: unset, the recipe's 10 steps at most a tenth of the run; set, kept (with a warning
when the run ends first)."""

import logging

import pytest

from tests.helpers import training_spec
from twinsft.config import LoraSpec, ModelSpec
from twinsft.training.schedule import warmup_steps_for


@pytest.mark.parametrize(("steps", "want"), [(1, 0), (9, 0), (30, 3), (100, 10), (450, 10)])
def test_unset_warmup_is_ten_steps_at_most_a_tenth_of_the_run(steps, want):
    assert warmup_steps_for(None, steps, 3e-4) == want


def test_short_run_says_how_it_warms_up(caplog):
    with caplog.at_level(logging.INFO, logger="twinsft.progress"):
        warmup_steps_for(None, 3, 3e-4)
    assert "warming up over 0 of the run's 3 optimizer steps" in caplog.text


def test_explicit_warmup_is_kept_and_a_too_long_one_is_named(caplog):
    with caplog.at_level(logging.WARNING, logger="twinsft.progress"):
        assert warmup_steps_for(4, 100, 3e-4) == 4
        assert not caplog.text
        assert warmup_steps_for(10, 3, 3e-4) == 10
    assert "training.warmup_steps 10 is not less than the 3 optimizer steps" in caplog.text


def test_a_one_step_run_on_six_rows_trains_at_the_full_learning_rate(tmp_path, tiny_model_dir, text_splits):
    """The small-data bug: 6 rows packed into one micro-batch of 16 made 1 optimizer step, and the recipe's 10
    warm-up steps gave it learning rate 0, so the held-out loss did not move. Unset, the warm-up fits the run."""
    from twinsft.training.fine_tune import build_trainer

    train, test = text_splits
    setup = build_trainer(
        train.select(range(6)), test.select(range(2)), ModelSpec(name=str(tiny_model_dir), max_seq_length=128),
        LoraSpec(r=4, alpha=8),
        training_spec(tmp_path, max_steps=-1, num_train_epochs=1, warmup_steps=None, gradient_accumulation_steps=8,
                      learning_rate=1e-2),
    )
    trainer = setup.trainer
    assert trainer.args.warmup_steps == 0
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    assert trainer.state.global_step == 1
    after = trainer.evaluate()["eval_loss"]
    assert after < before - 0.01  # the one step moved the weights
