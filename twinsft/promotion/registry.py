"""The stages of a ZenML Model: who holds one, what a version's run measured, moving a version on.

`promote_version` is the one way a version changes stage, for the `promote` step and for `run.py promote`:
it gathers the candidate's evidence, the staged version's (re-evaluated on the candidate's rows when it
was measured on others), decides, records the decision on the candidate version, and moves it when it
passes (the version it replaces is archived).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from twinsft.config import PromotionSpec
from twinsft.errors import UserError
from twinsft.export import ExportResult
from twinsft.generation.evaluate import EvalReport
from twinsft.promotion.decision import Decision, Evidence, decide
from twinsft.promotion.evidence import evidence_of, reevaluate

log = logging.getLogger("twinsft.progress")

EVALUATION, EXPORT, MERGED = "evaluation", "export_result", "merged_model"


def find_version(model: str, version: str | int) -> Any:
    """A version of `model` by name, number, stage or id; one line naming the fix when there is none."""
    from zenml.client import Client

    try:
        return Client().get_model_version(model, version)
    except (KeyError, ValueError, RuntimeError):
        raise UserError(f"model '{model}' has no version '{version}'; list them with `zenml model version list "
                        f"{model}`") from None


def stage_holder(model: str, stage: str) -> Any | None:
    """The version of `model` now in `stage`, or None."""
    from zenml.client import Client
    from zenml.enums import ModelStages

    try:
        return Client().get_model_version(model, ModelStages(stage))
    except KeyError:
        return None


def load_output(version: Any, name: str) -> Any | None:
    """The artifact `name` the version's run made (its newest), loaded; None when it has none."""
    artifact = version.get_artifact(name)
    return None if artifact is None else artifact.load()


def version_evidence(version: Any) -> Evidence | None:
    """What the version's own run measured (its `evaluation` and `export_result` outputs)."""
    report: EvalReport | None = load_output(version, EVALUATION)
    return None if report is None else evidence_of(str(version.number), report, load_output(version, EXPORT))


def incumbent_evidence(holder: Any, candidate: EvalReport, spec: PromotionSpec) -> Evidence | None:
    """The staged version's evidence on the candidate's rows: its own when its run evaluated the same rows,
    else (promotion.reevaluate) its merged model measured now; with neither, its own on other rows (the
    decision then refuses and says so)."""
    own = version_evidence(holder)
    if own is not None and own.rows_digest == candidate.rows_digest:
        return own
    merged = holder.get_artifact(MERGED)
    if spec.reevaluate and merged is not None:
        folder = merged.load()  # a local copy of the folder, from the artifact store
        return reevaluate(str(holder.number), Path(folder), candidate)
    why = ("promotion.reevaluate is false" if not spec.reevaluate
           else "it has no merged_model artifact to evaluate on these")
    if own is not None:
        return own.model_copy(update={"not_reevaluated": f"it was evaluated on other held-out rows and {why}"})
    return unmeasured(holder, f"its run evaluated no rows and {why}")


def unmeasured(holder: Any, why: str) -> Evidence:
    """A staged version with no numbers on the candidate's rows: the decision refuses and gives `why`."""
    return Evidence(version=str(holder.number), rows_digest="", samples=0, reference_loss=float("inf"), eos_rate=0.0,
                    not_reevaluated=why)


def promote_version(model: str, version: Any, report: EvalReport | None, export: ExportResult | None,
                    spec: PromotionSpec, stage: str | None = None, force_reason: str | None = None) -> Decision:
    """Decide on `version` (a ZenML model version of `model`) moving to `stage` (default promotion.stage), record
    the decision on it, and move it when it passes (or is forced past every check but the export's)."""
    from zenml import log_metadata

    stage = stage or spec.stage
    name = str(version.number)
    if report is None or not report.rows:
        decision = Decision(model=model, version=name, stage=stage, promoted=False,
                            note="the run evaluated no held-out rows (generation.eval_samples is 0)")
    elif version.stage == stage:
        decision = Decision(model=model, version=name, stage=stage, promoted=False, note=f"it is already in {stage}")
    else:
        candidate = evidence_of(name, report, export)
        holder = stage_holder(model, stage)
        try:
            incumbent = None if holder is None else incumbent_evidence(holder, report, spec)
        except Exception as exc:  # its files or model unreadable here: refuse and say why, never fail the run
            log.warning("promotion: could not evaluate %s version %s on these rows: %r", stage, holder.number, exc)
            incumbent = unmeasured(holder, f"evaluating it on these rows failed ({type(exc).__name__}: {exc})")
        decision = decide(model, candidate, incumbent, stage, spec, force_reason)
    log_metadata(decision.metadata(), model_version_id=version.id)
    if decision.promoted:
        version.set_stage(stage, force=True)  # the version there before is archived
    log.info("promotion: %s", decision.line())
    return decision
