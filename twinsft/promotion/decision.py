"""The decision itself: a candidate version's held-out evidence against the base model's and the staged
version's, each comparison a named check with its numbers in one line."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from twinsft.config import PromotionSpec


class Evidence(BaseModel):
    """What one version's evaluation says on a set of held-out rows (`rows_digest` names the set)."""

    version: str
    rows_digest: str
    samples: int
    reference_loss: float = Field(description="Mean held-out reference loss of this version")
    eos_rate: float = Field(description="Share of greedy answers that stopped at EOS")
    base_reference_loss: float | None = None  # the base model's on the same rows (the version's own run)
    base_eos_rate: float | None = None
    export_verified: bool = True
    reevaluated: bool = Field(False, description="Measured now on another version's rows, not read from its run")
    not_reevaluated: str = Field("", description="Why it was not measured on the candidate's rows, when it was not")


class Check(BaseModel):
    name: str
    passed: bool
    detail: str


class Decision(BaseModel):
    """Whether `version` of `model` moves to `stage`, and why; the promote step's output and the version's
    metadata."""

    model: str
    version: str
    stage: str
    promoted: bool
    checks: list[Check] = Field(default_factory=list)
    incumbent: str | None = Field(None, description="The version in the stage when the decision was made")
    forced_reason: str | None = None
    note: str = Field("", description="Why no decision was made (promotion off, no evaluation)")

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def line(self) -> str:
        """One line for the end-of-run summary."""
        head = f"{self.model} version {self.version}"
        if self.note:
            return f"{head} not promoted: {self.note}"
        if self.promoted and self.forced_reason:
            failed = "; ".join(check.detail for check in self.failed) or "every check passed"
            return f"{head} -> {self.stage} (forced: {self.forced_reason}; {failed})"
        if self.promoted:
            return f"{head} -> {self.stage}: " + "; ".join(check.detail for check in self.checks)
        return f"{head} not promoted to {self.stage}: " + "; ".join(check.detail for check in self.failed)

    def metadata(self) -> dict[str, Any]:
        """For the model version (ZenML metadata: plain values)."""
        return {
            "promotion_stage": self.stage,
            "promotion_promoted": self.promoted,
            "promotion_decision": self.line(),
            "promotion_checks": {check.name: {"passed": check.passed, "detail": check.detail} for check in self.checks},
            **({"promotion_incumbent": self.incumbent} if self.incumbent else {}),
            **({"promotion_forced_reason": self.forced_reason} if self.forced_reason else {}),
        }


def _relative(value: float, other: float) -> str:
    return f"{100 * (value - other) / other:+.1f}%" if other else "n/a"


def _lower_by(value: float, other: float, margin: float) -> bool:
    """`value` is lower than `other` by more than the relative `margin` (0: any amount lower)."""
    return value < other * (1.0 - margin)


def base_checks(candidate: Evidence, spec: PromotionSpec) -> list[Check]:
    """The tuned model against its own base model on the same rows: lower reference loss, no fewer EOS stops."""
    if candidate.base_reference_loss is None or candidate.base_eos_rate is None:
        return [Check(name="beats_base", passed=False, detail="no base-model numbers on the held-out rows")]
    loss, base = candidate.reference_loss, candidate.base_reference_loss
    need = f"needs {-100 * spec.margin_over_base:+.1f}% or lower" if spec.margin_over_base else "needs lower"
    return [
        Check(name="beats_base", passed=_lower_by(loss, base, spec.margin_over_base),
              detail=f"reference loss {loss:.4f} vs base {base:.4f} ({_relative(loss, base)}, {need})"),
        Check(name="eos_not_below_base", passed=candidate.eos_rate >= candidate.base_eos_rate,
              detail=f"EOS rate {candidate.eos_rate:.2f} vs base {candidate.base_eos_rate:.2f}"),
    ]


def incumbent_checks(candidate: Evidence, incumbent: Evidence | None, stage: str,
                     spec: PromotionSpec) -> list[Check]:
    """Against the version now in `stage`, on the same rows: lower reference loss, no lower EOS rate."""
    if incumbent is None:
        return [Check(name="beats_stage", passed=True, detail=f"no version in {stage} yet")]
    name = f"{stage} version {incumbent.version}"
    if incumbent.rows_digest != candidate.rows_digest:
        why = incumbent.not_reevaluated or "it was evaluated on other held-out rows and promotion.reevaluate is false"
        return [Check(name="beats_stage", passed=False, detail=f"{name} cannot be compared on these rows: {why}")]
    measured = " (re-evaluated on these rows)" if incumbent.reevaluated else ""
    loss, other = candidate.reference_loss, incumbent.reference_loss
    return [
        Check(name="beats_stage", passed=_lower_by(loss, other, spec.margin_over_stage),
              detail=f"reference loss {loss:.4f} vs {name}'s {other:.4f}{measured} ({_relative(loss, other)} "
                     f"on the same {candidate.samples} rows)"),
        Check(name="eos_not_below_stage", passed=candidate.eos_rate >= incumbent.eos_rate,
              detail=f"EOS rate {candidate.eos_rate:.2f} vs {name}'s {incumbent.eos_rate:.2f}"),
    ]


def decide(model: str, candidate: Evidence, incumbent: Evidence | None, stage: str, spec: PromotionSpec,
           force_reason: str | None = None) -> Decision:
    """Every check, and the verdict: all must pass; `force_reason` overrides any but the export's."""
    export = Check(name="export_verified", passed=candidate.export_verified,
                   detail="export verified" if candidate.export_verified else "the export's verification failed")
    checks = [export, *base_checks(candidate, spec), *incumbent_checks(candidate, incumbent, stage, spec)]
    passed = all(check.passed for check in checks)
    promoted = export.passed and (passed or force_reason is not None)
    return Decision(model=model, version=candidate.version, stage=stage, promoted=promoted, checks=checks,
                    incumbent=incumbent.version if incumbent else None,
                    forced_reason=force_reason if promoted else None)
