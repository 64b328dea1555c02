"""Step `promote`: the run's model version moves to `promotion.stage` only on held-out evidence (the decision
and each reason on the version, a card in the dashboard, a line in the summary). Never cached: the version in
the stage changes between runs."""

from typing import Annotated

from zenml import get_step_context, log_metadata, step

from twinsft.checks.machine import check_machine
from twinsft.config import ModelSpec, PromotionSpec
from twinsft.export import ExportResult
from twinsft.generation.evaluate import EvalReport
from twinsft.promotion.decision import Decision
from twinsft.promotion.registry import find_version, promote_version
from twinsft.steps.promotion_materializer import DecisionMaterializer


@step(enable_cache=False, output_materializers={"promotion": DecisionMaterializer})
def promote(
    evaluation: EvalReport, export_result: ExportResult, model: ModelSpec, promotion: PromotionSpec
) -> Annotated[Decision, "promotion"]:
    """Stage the run's version when it beats its base model and the version in the stage on the same held-out
    rows (re-evaluating that one on these rows when it was measured on others); record why either way."""
    decision = _decide(evaluation, export_result, model, promotion)
    log_metadata({"promoted": decision.promoted, "stage": decision.stage, "decision": decision.line()},
                 infer_artifact=True, artifact_name="promotion")
    return decision


def _decide(evaluation: EvalReport, export_result: ExportResult, model: ModelSpec,
            promotion: PromotionSpec) -> Decision:
    this_run = get_step_context().model_version  # the run's version of its ZenML Model
    if this_run is None:
        return Decision(model="", version="", stage=promotion.stage, promoted=False,
                        note="the run has no ZenML Model (the pipeline's `model:`)")
    name = this_run.model.name
    if not promotion.enabled:
        return Decision(model=name, version=str(this_run.number), stage=promotion.stage, promoted=False,
                        note="promotion.enabled is false")
    check_machine(model)  # a re-evaluation loads the staged version's merged model on this machine
    return promote_version(name, find_version(name, this_run.id), evaluation, export_result, promotion)
