"""Promotion against the session's ZenML store: versions with their evaluation, export and merged model linked as a
run links them, staged and refused on the same held-out rows, re-evaluated when measured on others."""

from uuid import uuid4

import pytest

from twinsft.config import PromotionSpec
from twinsft.errors import UserError
from twinsft.export import ExportResult
from twinsft.generation.evaluate import Answer, EvalReport, EvalRow
from twinsft.promotion.registry import find_version, promote_version, stage_holder

VERIFIED = ExportResult(dtype="float32", verified_tokens=8)


def report(tuned_loss: float, rows=("Say hi.", "Name a colour."), base_loss: float = 3.0) -> EvalReport:
    def side(loss: float) -> Answer:
        return Answer(text="a", new_tokens=2, stopped_at_eos=True, reference_loss=loss)

    return EvalReport(test_rows=len(rows), max_new_tokens=4, rows=[
        EvalRow(instruction=q, reference="Hello there.", reference_tokens=3, base=side(base_loss),
                tuned=side(tuned_loss))
        for q in rows])


def new_version(model: str, evaluation: EvalReport, export: ExportResult = VERIFIED, merged=None):
    """A model version with the outputs a run links to it (the promote step reads them from its inputs)."""
    from zenml import save_artifact
    from zenml.client import Client
    from zenml.model.utils import link_artifact_version_to_model_version

    from twinsft.steps.model_folder import ModelFolder, ModelFolderMaterializer

    client = Client()
    try:
        client.get_model(model)
    except KeyError:
        client.create_model(name=model)
    version = client.create_model_version(model_name_or_id=model)
    outputs = [save_artifact(evaluation, name="evaluation"), save_artifact(export, name="export_result")]
    if merged is not None:
        outputs.append(save_artifact(ModelFolder(merged), name="merged_model", materializer=ModelFolderMaterializer))
    for artifact in outputs:
        link_artifact_version_to_model_version(artifact, version)
    return client.get_model_version(model, version.id)


@pytest.fixture
def model():
    return f"promotion-{uuid4().hex[:8]}"


def promote(model, version, evaluation, spec=None, **kwargs):
    return promote_version(model, version, evaluation, VERIFIED, spec or PromotionSpec(), **kwargs)


def test_better_is_staged_worse_is_refused_on_the_same_rows(model):
    first = new_version(model, report(2.0))
    assert promote(model, first, report(2.0)).promoted
    assert stage_holder(model, "staging").number == first.number

    worse = new_version(model, report(2.2))
    decision = promote(model, worse, report(2.2))
    assert not decision.promoted and decision.incumbent == str(first.number)
    assert "reference loss 2.2000 vs staging version 1's 2.0000 (+10.0% on the same 2 rows)" in decision.line()
    assert stage_holder(model, "staging").number == first.number  # untouched
    recorded = find_version(model, worse.number).run_metadata
    assert recorded["promotion_promoted"] is False and recorded["promotion_decision"] == decision.line()

    better = new_version(model, report(1.5))
    assert promote(model, better, report(1.5)).promoted
    assert stage_holder(model, "staging").number == better.number
    assert find_version(model, first.number).stage == "archived"


def test_staged_version_evaluated_on_other_rows_is_reevaluated_on_these(model, tiny_model_dir):
    staged = new_version(model, report(2.0, rows=("Other row.",)), merged=tiny_model_dir)
    assert promote(model, staged, report(2.0, rows=("Other row.",))).promoted
    candidate = report(0.5)  # far below what a random tiny model scores on these rows
    decision = promote(model, new_version(model, candidate), candidate)
    assert decision.promoted, decision.line()
    assert "(re-evaluated on these rows)" in decision.line()

    refused = promote(model, new_version(model, report(0.4, rows=("Third.",))), report(0.4, rows=("Third.",)),
                      spec=PromotionSpec(reevaluate=False))
    assert not refused.promoted
    assert "cannot be compared on these rows: it was evaluated on other held-out rows and promotion.reevaluate is " \
           "false" in refused.line()


def test_production_from_the_command_line_and_force(model, capsys):
    from twinsft.cli.promote import promote_command

    staged = new_version(model, report(2.0))
    promote(model, staged, report(2.0))
    assert promote_command([str(staged.number), "--model", model, "--stage", "production"]) == 0
    assert stage_holder(model, "production").number == staged.number
    weaker = new_version(model, report(2.5))
    assert promote_command([str(weaker.number), "--model", model]) == 1
    out = capsys.readouterr().out
    assert "not promoted to production" in out and "FAIL  beats_stage" in out
    assert promote_command([str(weaker.number), "--model", model, "--force", "--reason", "rollback drill"]) == 0
    assert find_version(model, weaker.number).run_metadata["promotion_forced_reason"] == "rollback drill"
    assert promote_command(["99", "--model", model]) == 2
    assert f"error: model '{model}' has no version '99'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        promote_command([str(weaker.number), "--model", model, "--force"])
    assert exited.value.code == 2


def test_unknown_version_is_one_line(model):
    with pytest.raises(UserError, match=f"model '{model}' has no version '3'"):
        find_version(model, 3)


def test_a_staged_version_that_cannot_be_evaluated_refuses_instead_of_failing(model, tmp_path):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    (not_a_model / "README.md").write_text("no weights here")
    staged = new_version(model, report(2.0, rows=("Other row.",)), merged=not_a_model)
    assert promote(model, staged, report(2.0, rows=("Other row.",))).promoted
    candidate = report(0.5)
    decision = promote(model, new_version(model, candidate), candidate)
    assert not decision.promoted
    assert "staging version 1 cannot be compared on these rows: evaluating it on these rows failed (" in decision.line()
    assert stage_holder(model, "staging").number == staged.number
