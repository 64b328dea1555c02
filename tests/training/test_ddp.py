"""Training on several processes through torchrun (DDP, gloo on the CPU) gives what one process gives.

The `ddp` tests start two ranks on the tiny Llama with the TRL backend (run alone with `-m ddp`). The
reference is a single in-process run over the same rows with the same effective batch: each optimizer
step then averages the same samples' gradients, in another order of float sums, so the train losses
agree to LOSS_TOLERANCE. The held-out loss is averaged per rank's batches first, so it gets EVAL_TOLERANCE.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import training_spec
from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
from twinsft.errors import ConfigError
from twinsft.training import TrainingJob, resume
from twinsft.training.handoff import ERRORS, TrainingProcessError, rank_failure
from twinsft.training.launch import resolve_processes, train, train_on_processes
from twinsft.training.world import split_batch

LOSS_TOLERANCE = 1e-4  # relative, per logged step
EVAL_TOLERANCE = 1e-3
# 32 training rows pack into 16 sequences of <= 128 tokens; 4 a step: 8 steps are two whole epochs,
# so no rank ever pads its last batch with repeated samples.
STEPS, SAVE_EVERY = 8, 3


def spec(tmp_path: Path, **overrides) -> TrainingSpec:
    return training_spec(tmp_path, per_device_train_batch_size=2, gradient_accumulation_steps=2, max_steps=STEPS,
                         save_steps=SAVE_EVERY, **overrides)


def model_args(tiny_model_dir: Path) -> tuple[ModelSpec, LoraSpec]:
    return ModelSpec(name=str(tiny_model_dir), max_seq_length=128), LoraSpec(r=4, alpha=8)


def job(text_splits, tiny_model_dir: Path, training: TrainingSpec, adapter_dir: Path) -> TrainingJob:
    return TrainingJob(*text_splits, *model_args(tiny_model_dir), training, adapter_dir)


# ---------------------------------------------------------------- without launching


def test_the_effective_batch_is_split_across_processes():
    def split(micro: int, accumulation: int, processes: int) -> tuple[int, int]:
        t = split_batch(TrainingSpec(per_device_train_batch_size=micro, gradient_accumulation_steps=accumulation),
                        processes)
        return t.per_device_train_batch_size, t.gradient_accumulation_steps

    assert split(2, 8, 1) == (2, 8)
    assert split(2, 8, 2) == (2, 4)  # the recipe's 16 sequences: 2 x 4 on each of 2 GPUs
    assert split(2, 8, 8) == (2, 1)
    assert split(4, 1, 2) == (2, 1)  # the micro-batch shrinks when a rank's share is smaller
    assert split(3, 4, 4) == (3, 1)
    assert split(4, 3, 4) == (3, 1)  # 12 / 4 = 3 a rank: the largest micro-batch dividing it
    with pytest.raises(ConfigError, match=r"2 x 8 = 16 cannot be split across 3 processes"):
        split(2, 8, 3)


def test_num_processes_on_a_cpu(tmp_path):
    assert resolve_processes(spec(tmp_path)) == 1  # auto without a GPU: today's in-process path
    assert resolve_processes(spec(tmp_path, num_processes=2)) == 2  # asked for: gloo ranks on the CPU
    with pytest.raises(ValueError, match="num_processes"):
        spec(tmp_path, num_processes=0)


def test_the_checkpoint_key_holds_the_world_size_not_the_setting(tmp_path, tiny_model_dir):
    model, lora = model_args(tiny_model_dir)
    key = lambda training, world: resume.run_key("t", "e", model, lora, training, world)  # noqa: E731
    assert key(spec(tmp_path), 1) != key(spec(tmp_path), 2)
    assert key(spec(tmp_path, num_processes="auto"), 2) == key(spec(tmp_path, num_processes=2), 2)


def test_a_batch_that_cannot_be_split_fails_before_any_process_starts(tmp_path, tiny_model_dir, text_splits):
    with pytest.raises(ConfigError, match="cannot be split across 3 processes"):
        train_on_processes(job(text_splits, tiny_model_dir, spec(tmp_path), tmp_path / "a"), processes=3)
    assert not (tmp_path / "ckpt").exists()


def _error_file(folder: Path, rank: int, kind: str, message: str, user_error: bool) -> None:
    (folder / ERRORS).mkdir(parents=True, exist_ok=True)
    (folder / ERRORS / f"rank{rank}.json").write_text(json.dumps({
        "rank": rank, "type": kind, "user_error": user_error, "message": message, "traceback": "Traceback ...",
    }))


def test_a_rank_s_error_becomes_one_exception(tmp_path):
    _error_file(tmp_path, 1, "ValueError", "bad\nshape", user_error=False)
    crash = rank_failure(tmp_path, 1, tail=[])
    assert isinstance(crash, TrainingProcessError)
    assert str(crash) == "training process rank 1 failed: ValueError: bad shape"
    _error_file(tmp_path, 0, "ConfigError", "training.x: fix it", user_error=True)  # bad input wins over its echo
    bad_input = rank_failure(tmp_path, 1, tail=[])
    assert type(bad_input) is ConfigError and str(bad_input) == "training.x: fix it"
    silent = rank_failure(tmp_path / "none", 1, tail=["  exitcode  : -9 (pid: 7)", "  traceback : Signal 9 (SIGKILL)",
                                                      "====="])
    assert str(silent) == ("torchrun exited with status 1 before any rank reported an error: "
                           "exitcode  : -9 (pid: 7) / traceback : Signal 9 (SIGKILL)")


# ---------------------------------------------------------------- two ranks on the CPU

# Imported by every Python process started with this folder on PYTHONPATH, torchrun's ranks included:
# the rank named by TWINSFT_TEST_RANK fails as TWINSFT_TEST_FAILURE says, at a point the test relies on.
FAILING_RANK = textwrap.dedent("""
    import os
    if os.environ.get("RANK") is not None and os.environ.get("RANK") == os.environ.get("TWINSFT_TEST_RANK"):
        import signal
        import transformers
        from twinsft.errors import ConfigError

        if os.environ["TWINSFT_TEST_FAILURE"] == "bad-input":  # as the rank reads its rows, before any model
            import datasets

            def bad_rows(*args, **kwargs):
                raise ConfigError("training.example: this rank found bad input; fix it")
            datasets.load_from_disk = bad_rows

        class Fail(transformers.TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if os.environ["TWINSFT_TEST_FAILURE"] == "sigkill" and state.global_step >= 6:
                    os.kill(os.getpid(), signal.SIGKILL)  # a real crash: no cleanup, no error file

        init = transformers.Trainer.__init__
        def with_failure(self, *args, **kwargs):
            init(self, *args, **kwargs)
            self.add_callback(Fail())
        transformers.Trainer.__init__ = with_failure
""")


@pytest.fixture
def failing_rank(tmp_path, monkeypatch):
    """Call with (rank, how): that rank of the next launch fails."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAILING_RANK)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p))

    def arm(rank: int, how: str) -> None:
        monkeypatch.setenv("TWINSFT_TEST_RANK", str(rank))
        monkeypatch.setenv("TWINSFT_TEST_FAILURE", how)

    return arm


@pytest.fixture(scope="module")
def runs(tiny_model_dir, text_splits, tmp_path_factory):
    """The same training in this process and on two ranks: (in-process report, two-rank report, folder, the
    metrics the two ranks sent to the tracker's sink as (step, metrics))."""
    from twinsft.training import train_lora

    out = tmp_path_factory.mktemp("ddp")
    one = train_lora(*text_splits, *model_args(tiny_model_dir), spec(out / "one"), out / "one" / "adapter")
    sent: list[tuple[int, dict]] = []
    two = train(job(text_splits, tiny_model_dir, spec(out / "two", num_processes=2), out / "two" / "adapter"),
                metrics=lambda metrics, step: sent.append((step, dict(metrics))))
    return one, two, out, sent


@pytest.mark.ddp
def test_two_ranks_train_the_configured_batch_and_sum_their_tokens(runs):
    one, two, _, _ = runs
    assert (one.num_processes, two.num_processes) == (1, 2)
    assert (one.micro_batch, one.gradient_accumulation_steps) == (2, 2)
    assert two.micro_batch * two.gradient_accumulation_steps * two.num_processes == 4  # as configured: 2 x 2
    assert two.steps == one.steps == STEPS
    # Each rank sees half of every step's sequences; the report counts both halves.
    assert two.train_tokens == one.train_tokens > 0
    assert two.tokens_per_s == pytest.approx(two.train_tokens / two.train_runtime_s)


@pytest.mark.ddp
def test_two_ranks_follow_the_single_process_loss_curve(runs):
    one, two, _, _ = runs
    assert [p.step for p in two.train_losses] == [p.step for p in one.train_losses] == list(range(1, STEPS + 1))
    assert [p.loss for p in two.train_losses] == pytest.approx([p.loss for p in one.train_losses], rel=LOSS_TOLERANCE)
    assert two.eval_loss_before == pytest.approx(one.eval_loss_before, rel=EVAL_TOLERANCE)
    assert two.eval_loss_after == pytest.approx(one.eval_loss_after, rel=EVAL_TOLERANCE)
    assert two.eval_loss_after < two.eval_loss_before * 0.9


@pytest.mark.ddp
def test_rank_zero_s_metrics_reach_the_tracker_once_a_step(runs):
    _, two, _, sent = runs
    losses = [(step, m["loss"]) for step, m in sent if "loss" in m]
    assert losses == [(p.step, pytest.approx(p.loss)) for p in two.train_losses]  # one rank's, once a step
    assert all(m["tokens_per_s"] > 0 for step, m in sent if "loss" in m and step > 1)
    assert [step for step, m in sent if "eval_loss" in m] == [0, STEPS]


@pytest.mark.ddp
def test_rank_zero_writes_the_adapter_once_and_cleans_up(runs):
    _, _, out, _ = runs
    one_dir, two_dir = out / "one" / "adapter", out / "two" / "adapter"
    assert sorted(p.name for p in two_dir.iterdir()) == sorted(p.name for p in one_dir.iterdir())
    one_w, two_w = load_file(one_dir / "adapter_model.safetensors"), load_file(two_dir / "adapter_model.safetensors")
    assert one_w.keys() == two_w.keys()
    for name in one_w:  # the gradients were shared: both ranks' updates are in rank 0's weights
        torch.testing.assert_close(two_w[name], one_w[name], rtol=1e-3, atol=1e-5, msg=name)
    assert list((out / "two" / "ckpt").iterdir()) == []  # the run's checkpoints are dropped after success


@pytest.mark.ddp
def test_bad_input_in_one_rank_is_one_line_and_ends_the_other(tmp_path, tiny_model_dir, text_splits, failing_rank):
    failing_rank(1, "bad-input")
    with pytest.raises(ConfigError) as raised:
        train(job(text_splits, tiny_model_dir, spec(tmp_path, num_processes=2), tmp_path / "adapter"))
    assert str(raised.value) == "training.example: this rank found bad input; fix it"  # exit 2 in run.py
    assert not (tmp_path / "adapter").exists()


@pytest.mark.ddp
def test_a_killed_rank_ends_the_run_and_the_rerun_resumes(tmp_path, tiny_model_dir, text_splits, failing_rank, runs):
    _, uninterrupted, _, _ = runs
    training = spec(tmp_path, num_processes=2)
    failing_rank(1, "sigkill")
    with pytest.raises(TrainingProcessError):
        train(job(text_splits, tiny_model_dir, training, tmp_path / "adapter"))
    (folder,) = (tmp_path / "ckpt").iterdir()
    complete = resume.latest_complete(folder)
    assert complete is not None and complete.name in ("checkpoint-3", "checkpoint-6")
    step = resume.checkpoint_step(complete)
    assert {p.name for p in complete.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}

    failing_rank(-1, "none")
    resumed = train(job(text_splits, tiny_model_dir, training, tmp_path / "adapter"))
    assert resumed.num_processes == 2 and resumed.resumed_from_step == step
    assert resumed.steps == STEPS
    assert [p.loss for p in resumed.train_losses] == pytest.approx(
        [p.loss for p in uninterrupted.train_losses], rel=LOSS_TOLERANCE)
    assert resumed.train_tokens == uninterrupted.train_tokens


def test_ranks_end_when_the_step_process_dies(tmp_path):
    """A SIGKILLed step cannot stop torchrun: its ranks watch the step's process and exit when it is gone."""
    import subprocess
    import sys
    import time

    step = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    rank = subprocess.Popen(
        [sys.executable, "-c", "import time; from twinsft.training.rank import end_with_step; "
         "end_with_step(every_s=0.1); time.sleep(60)"],
        env={**os.environ, "TWINSFT_STEP_PID": str(step.pid)},
    )
    time.sleep(1.5)
    assert rank.poll() is None  # the step lives: the rank trains on
    step.kill()
    step.wait()
    assert rank.wait(timeout=10) == 1
