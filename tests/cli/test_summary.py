"""The end-of-run summary's base vs tuned lines, and the evaluation's cell in the step table."""

from types import SimpleNamespace

from twinsft.cli.summary import evaluation_lines, step_rows
from twinsft.generation.evaluate import Answer, EvalReport, EvalRow
from twinsft.pipelines.steps_table import STEP_NAMES


def row(base_loss: float, base_eos: bool, tuned_loss: float, tuned_eos: bool) -> EvalRow:
    return EvalRow(instruction="q", reference="r", reference_tokens=2,
                   base=Answer(text="b", new_tokens=8, stopped_at_eos=base_eos, reference_loss=base_loss),
                   tuned=Answer(text="t", new_tokens=3, stopped_at_eos=tuned_eos, reference_loss=tuned_loss))


REPORT = EvalReport(test_rows=21, max_new_tokens=96, rows=[row(3.0, False, 2.0, True), row(2.0, True, 1.0, True)])


def test_evaluation_lines_show_loss_base_to_tuned_and_eos_stops():
    lines = evaluation_lines(REPORT)
    assert lines[0] == ("Base vs tuned on held-out rows (the first 2 of 21 in the test split, greedy, "
                        "at most 96 new tokens):")
    assert lines[1].split() == ["base", "tuned"]
    assert lines[2].split() == ["mean", "reference", "loss", "2.5000", "1.5000", "(-40.0%)"]
    assert lines[3].split() == ["stopped", "at", "EOS", "1/2", "2/2"]
    assert lines[2].index("2.5000") == lines[3].index("1/2") == lines[1].index("base")  # aligned columns


def test_evaluation_lines_when_the_evaluation_was_off():
    assert evaluation_lines(EvalReport(test_rows=21, max_new_tokens=96)) == [
        "Base vs tuned on held-out rows: off (generation.eval_samples is 0)"
    ]


def test_step_table_names_the_evaluation_numbers():
    def step(meta: dict) -> SimpleNamespace:
        outputs = {"smoke_generation": [SimpleNamespace(run_metadata={"stopped_at_eos": True, "new_tokens": 5})],
                   "evaluation": [SimpleNamespace(run_metadata=meta)]}
        return SimpleNamespace(status=SimpleNamespace(value="completed"), start_time=None, end_time=None,
                               outputs=outputs)

    on = SimpleNamespace(steps={"smoke_generate": step(REPORT.summary())})
    assert step_rows(on) == [("smoke_generate", "completed", "-", "smoke_generation (5 tokens, EOS), "
                              "evaluation (reference loss 2.500 -> 1.500, EOS 1/2 -> 2/2)")]
    off = SimpleNamespace(steps={"smoke_generate": step({"eval_samples": 0})})
    assert step_rows(off)[0][3].endswith("evaluation (off)")


def test_step_rows_follow_the_pipelines_table_whatever_order_the_store_returns():
    def step() -> SimpleNamespace:
        return SimpleNamespace(status=SimpleNamespace(value="cached"), start_time=None, end_time=None, outputs={})

    shuffled = [STEP_NAMES[-1], "crawl", *STEP_NAMES[:-1][::-1]]  # a parent pipeline's own step among ours
    run = SimpleNamespace(steps={name: step() for name in shuffled})
    assert [row[0] for row in step_rows(run)] == [*STEP_NAMES, "crawl"]
