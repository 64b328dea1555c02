"""How the held-out evaluation is stored and shown: JSON (like any pydantic model) and a Markdown card.

A module of its own rather than beside the training report's materializer in `visualizations`: that
module is in `train_sft`'s import closure, so the evaluation code there would rerun training when edited
(this module imports `visualizations`, not the other way round).
"""

from __future__ import annotations

from typing import Any, ClassVar

from zenml.enums import VisualizationType
from zenml.materializers.pydantic_materializer import PydanticMaterializer

from twinsft.generation.evaluate import Answer, EvalReport
from twinsft.steps.visualizations import write_visualization

EVALUATION_CARD = "evaluation.md"


def _quoted(text: str) -> str:
    """A text as a Markdown block quote: its own lines kept, its Markdown unable to break the card's layout."""
    return "\n".join(f"> {line}" for line in (text.strip() or "*(empty)*").splitlines())


def _answer_line(label: str, answer: Answer) -> str:
    stop = "stopped at EOS" if answer.stopped_at_eos else "did NOT stop at EOS"
    return f"**{label}**: reference loss {answer.reference_loss:.4f}, {answer.new_tokens} new tokens, {stop}"


def evaluation_markdown(report: EvalReport) -> str:
    """The means on top, then each row: instruction, reference, the base and the tuned answer with their numbers."""
    if not report.rows:
        return "## Base vs tuned on held-out rows\n\nOff: `generation.eval_samples` is 0.\n"
    n = report.samples
    base, tuned = report.mean_reference_loss("base"), report.mean_reference_loss("tuned")
    parts = [
        f"## Base vs tuned on {n} held-out rows",
        "",
        "| | base | tuned |",
        "|---|---|---|",
        f"| mean reference loss | {base:.4f} | {tuned:.4f} ({report.reference_loss_change_text}) |",
        f"| stopped at EOS | {report.eos_stops('base')}/{n} | {report.eos_stops('tuned')}/{n} |",
        "",
        f"The first {n} of the {report.test_rows} rows of the test split. Answers are greedy, at most "
        f"{report.max_new_tokens} new tokens; the base model is the tuned one with its adapter disabled. "
        "Reference loss: the mean token loss of the reference answer and EOS after the prompt.",
    ]
    for i, row in enumerate(report.rows, start=1):
        parts += [
            "", f"### Row {i}", "", "**Instruction**", "", _quoted(row.instruction),
            "", f"**Reference** ({row.reference_tokens} tokens with EOS)", "", _quoted(row.reference),
            "", _answer_line("Base", row.base), "", _quoted(row.base.text),
            "", _answer_line("Tuned", row.tuned), "", _quoted(row.tuned.text),
        ]
    return "\n".join(parts) + "\n"


class EvalReportMaterializer(PydanticMaterializer):
    """An EvalReport as JSON plus its Markdown card for the dashboard."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (EvalReport,)

    def save_visualizations(self, data: EvalReport) -> dict[str, VisualizationType]:
        card = write_visualization(self, EVALUATION_CARD, evaluation_markdown(data))
        return {card: VisualizationType.MARKDOWN, **super().save_visualizations(data)}
