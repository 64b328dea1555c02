"""How a promotion decision is stored and shown: JSON (like any pydantic model) and a Markdown card."""

from __future__ import annotations

from typing import Any, ClassVar

from zenml.enums import VisualizationType
from zenml.materializers.pydantic_materializer import PydanticMaterializer

from twinsft.promotion.decision import Decision
from twinsft.steps.visualizations import write_visualization

PROMOTION_CARD = "promotion.md"


def promotion_markdown(decision: Decision) -> str:
    """The verdict on top, then each check with its numbers."""
    if decision.note:
        return f"## Promotion\n\nVersion {decision.version or '-'}: not promoted: {decision.note}.\n"
    verdict = (f"moved to **{decision.stage}**" if decision.promoted else f"**not** moved to {decision.stage}")
    parts = [f"## Promotion: {decision.model} version {decision.version} {verdict}", ""]
    if decision.incumbent:
        parts += [f"Version in {decision.stage} at the decision: {decision.incumbent}"
                  + (" (archived)" if decision.promoted else ""), ""]
    if decision.forced_reason:
        parts += [f"Forced: {decision.forced_reason}", ""]
    parts += ["| check | result | numbers |", "|---|---|---|"]
    parts += [f"| {check.name} | {'pass' if check.passed else 'FAIL'} | {check.detail} |" for check in decision.checks]
    return "\n".join(parts) + "\n"


class DecisionMaterializer(PydanticMaterializer):
    """A Decision as JSON plus its Markdown card for the dashboard."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (Decision,)

    def save_visualizations(self, data: Decision) -> dict[str, VisualizationType]:
        card = write_visualization(self, PROMOTION_CARD, promotion_markdown(data))
        return {card: VisualizationType.MARKDOWN, **super().save_visualizations(data)}
