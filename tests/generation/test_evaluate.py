"""Base vs tuned on held-out rows: the base side is the model with its adapter off, the reference loss is the
masked cross-entropy of the answer and EOS, and eval_samples 0 does no work."""

import pytest

from tests.helpers import GENERAL_ROWS, TWIN_ROWS
from twinsft.config import ModelSpec
from twinsft.data.alpaca import ALPACA
from twinsft.errors import ConfigError
from twinsft.generation import evaluate
from twinsft.generation.evaluate import (
    Answer,
    EvalReport,
    EvalRow,
    check_eval_samples,
    eval_samples_for,
    evaluate_held_out,
)
from twinsft.generation.greedy import generate, load_adapted


def masked_cross_entropy(model, tok, instruction: str, reference: str) -> float:
    """By hand: the mean negative log-probability of each reference token and EOS after the prompt."""
    import torch

    prompt = tok(ALPACA.prompt(instruction)).input_ids
    answer = [*tok(reference, add_special_tokens=False).input_ids, tok.eos_token_id]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + answer])).logits[0].double()
    logprobs = torch.log_softmax(logits, dim=-1)
    return -sum(logprobs[len(prompt) - 1 + j, token].item() for j, token in enumerate(answer)) / len(answer)


@pytest.fixture(scope="module")
def adapted(tiny_model_dir, adapter_dir):
    return load_adapted(ModelSpec(name=str(tiny_model_dir)), adapter_dir)


def test_reference_loss_is_the_masked_cross_entropy(tiny_model_dir, adapted):
    from transformers import AutoModelForCausalLM

    model, tok = adapted
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    row = TWIN_ROWS[5]
    tuned_loss = evaluate.reference_loss(model, tok, row["instruction"], row["output"])
    assert tuned_loss == pytest.approx(masked_cross_entropy(model, tok, row["instruction"], row["output"]), rel=1e-5)
    with model.disable_adapter():
        base_loss = evaluate.reference_loss(model, tok, row["instruction"], row["output"])
    assert base_loss == pytest.approx(masked_cross_entropy(base, tok, row["instruction"], row["output"]), rel=1e-5)
    assert base_loss != pytest.approx(tuned_loss)  # the adapter's non-zero B matrices move it


def test_base_answers_come_from_the_base_model_and_differ_from_the_tuned(tiny_model_dir, adapted, text_splits):
    from transformers import AutoModelForCausalLM

    model, tok = adapted
    test = text_splits[1]
    report = evaluate_held_out(model, tok, test["text"], samples=3, max_new_tokens=6)
    assert (report.samples, report.test_rows, report.max_new_tokens) == (3, len(test), 6)
    # The first rows of the split, in its order, read back into the rows they were made from.
    rows = {(r["instruction"], r["output"]) for r in TWIN_ROWS + GENERAL_ROWS}
    expected = [ALPACA.instruction_and_output(text, tok.eos_token) for text in test["text"][:3]]
    assert [(r.instruction, r.reference) for r in report.rows] == expected and set(expected) <= rows

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    for row in report.rows:
        assert row.base.text == generate(base, tok, row.instruction, 6).response
        assert row.tuned.text == generate(model, tok, row.instruction, 6).response  # the adapter is back on
        assert row.base.reference_loss == pytest.approx(masked_cross_entropy(base, tok, row.instruction,
                                                                             row.reference), rel=1e-5)
        assert row.reference_tokens == len(tok(row.reference, add_special_tokens=False).input_ids) + 1
        for side in (row.base, row.tuned):
            assert 1 <= side.new_tokens <= 6 and (side.stopped_at_eos or side.new_tokens == 6)
    assert any(row.base.text != row.tuned.text for row in report.rows)
    assert all(row.base.reference_loss != pytest.approx(row.tuned.reference_loss) for row in report.rows)


class Untouchable:
    def __getattr__(self, name):
        raise AssertionError(f"used .{name} although the evaluation is off")


def test_zero_samples_does_no_work(monkeypatch):
    monkeypatch.setattr(evaluate, "generate", Untouchable())
    report = evaluate_held_out(Untouchable(), Untouchable(), ["not even a training text"] * 5, samples=0,
                               max_new_tokens=8)
    assert report.rows == [] and report.test_rows == 5
    assert report.summary() == {"eval_samples": 0}
    assert report.mean_reference_loss("base") is None and report.reference_loss_change_text == "-"


def test_eval_samples_must_fit_in_the_test_split():
    check_eval_samples(8, 8)
    check_eval_samples(0, 1)
    with pytest.raises(ConfigError, match=r"generation.eval_samples 9 is more than the 8 rows of the test split; "
                                          r"lower it \(0 turns the evaluation off\) or raise split.test_size"):
        check_eval_samples(9, 8)
    with pytest.raises(ConfigError, match="eval_samples 9"):
        evaluate_held_out(Untouchable(), Untouchable(), ["x"] * 8, samples=9, max_new_tokens=8)


def report_of(base: list[tuple[float, bool]], tuned: list[tuple[float, bool]]) -> EvalReport:
    def side(loss: float, eos: bool) -> Answer:
        return Answer(text="a", new_tokens=3, stopped_at_eos=eos, reference_loss=loss)

    rows = [EvalRow(instruction=f"q{i}", reference=f"r{i}", reference_tokens=2, base=side(*b), tuned=side(*t))
            for i, (b, t) in enumerate(zip(base, tuned, strict=True))]
    return EvalReport(test_rows=10, max_new_tokens=8, rows=rows)


def test_rows_digest_names_the_rows_and_the_token_budget():
    report = report_of([(2.0, False)] * 2, [(1.0, True)] * 2)
    same_rows = report_of([(9.0, True)] * 2, [(9.0, True)] * 2)  # other answers, the same rows
    assert report.rows_digest == same_rows.rows_digest and len(report.rows_digest) == 64
    other_row = report.model_copy(update={"rows": [report.rows[0], report.rows[0]]})
    other_budget = report.model_copy(update={"max_new_tokens": 9})
    assert len({report.rows_digest, other_row.rows_digest, other_budget.rows_digest}) == 3


def test_means_change_and_eos_rates():
    report = report_of([(2.0, False), (4.0, True), (3.0, False), (3.0, False)],
                       [(1.0, True), (2.0, True), (1.5, True), (1.5, False)])
    assert report.mean_reference_loss("base") == 3.0 and report.mean_reference_loss("tuned") == 1.5
    assert report.reference_loss_change == -0.5 and report.reference_loss_change_text == "-50.0%"
    assert (report.eos_stops("base"), report.eos_stops("tuned")) == (1, 3)
    assert report.summary() == {
        "eval_samples": 4,
        "eval_rows_digest": report.rows_digest,
        "eval_reference_loss_base": 3.0,
        "eval_reference_loss_tuned": 1.5,
        "eval_reference_loss_change": -0.5,
        "eval_eos_rate_base": 0.25,
        "eval_eos_rate_tuned": 0.75,
    }
    assert EvalReport.model_validate_json(report.model_dump_json()) == report  # what the materializer stores


def test_unset_eval_samples_evaluates_what_a_small_split_holds_and_says_so(caplog):
    with caplog.at_level("INFO", logger="twinsft.progress"):
        assert eval_samples_for(None, 21) == 8  # the default, quietly
        assert caplog.messages == []
        assert eval_samples_for(None, 4) == 4
    assert caplog.messages == ["generation.eval_samples is not set: evaluating the 4 held-out rows of the test split "
                               "(up to 8 by default)"]
    assert eval_samples_for(0, 4) == 0 and eval_samples_for(4, 4) == 4
    with pytest.raises(ConfigError, match=r"generation\.eval_samples 5 is more than the 4 rows of the test split"):
        eval_samples_for(5, 4)  # an explicit number still has to fit
