"""What the ZenML dashboard shows for our artifacts: a loss-curve image, the generation as Markdown.

Visualizations are files a materializer writes next to the artifact; the dashboard (and
`artifact_version.visualize()` in a notebook) displays them. The training report's and the smoke
generation's materializers are here, beside what they draw.
"""

from __future__ import annotations

import io
import os
from typing import Any, ClassVar

from zenml.enums import VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.materializers.built_in_materializer import BuiltInMaterializer
from zenml.materializers.pydantic_materializer import PydanticMaterializer

from twinsft.training.report import TrainReport

LOSS_CURVE = "loss_curve.png"
REPORT_CARD = "report.md"
GENERATION_CARD = "generation.md"


def loss_curve_png(report: TrainReport) -> bytes:
    """Train and held-out loss over optimizer steps, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if report.train_losses:
        ax.plot([p.step for p in report.train_losses], [p.loss for p in report.train_losses],
                label="train loss", color="tab:blue", linewidth=1.5)
    # Held-out loss: before training (step 0), any evaluations during it, and after training.
    evals = sorted({0: report.eval_loss_before, **{p.step: p.loss for p in report.eval_losses},
                    report.steps: report.eval_loss_after}.items())
    ax.plot([s for s, _ in evals], [v for _, v in evals], label="eval loss", color="tab:orange",
            marker="o", linewidth=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(f"{report.mode} on {report.device}: {report.eval_loss_name} {report.eval_loss_before:.3f} -> "
                 f"{report.eval_loss_after:.3f} ({report.eval_loss_change})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def report_markdown(report: TrainReport) -> str:
    rows = [
        ("backend / mode / precision", f"{report.backend} / {report.mode} / {report.precision}"),
        ("device", report.device),
        (f"{report.eval_loss_name} before -> after", f"{report.eval_loss_before:.4f} -> {report.eval_loss_after:.4f} "
                                      f"({report.eval_loss_change})"),
        ("mean train loss", f"{report.train_loss:.4f}"),
        ("steps / tokens", f"{report.steps} / {report.train_tokens:,}"),
        ("tokens/s", f"{report.tokens_per_s:,.0f}"),
        ("peak memory", f"{report.peak_memory_gib:.2f} GiB ({report.memory_kind})"),
        ("trainable params", f"{report.trainable_params:,} of {report.total_params:,}"),
    ]
    lines = ["| training | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join(lines) + "\n"


class SmokeResponse(str):
    """The smoke generation's text (what loads back: a plain `str`), carrying its instruction for the card."""

    instruction: str
    stopped_at_eos: bool
    new_tokens: int

    def __new__(cls, response: str, instruction: str, stopped_at_eos: bool, new_tokens: int) -> SmokeResponse:
        obj = super().__new__(cls, response)
        obj.instruction, obj.stopped_at_eos, obj.new_tokens = instruction, stopped_at_eos, new_tokens
        return obj


def generation_markdown(response: str, instruction: str | None = None, stopped_at_eos: bool | None = None,
                        new_tokens: int | None = None) -> str:
    parts = []
    if instruction is not None:
        parts += ["### Instruction", "", instruction, ""]
    parts += ["### Response", "", response.strip() or "*(empty)*", ""]
    if stopped_at_eos is not None:
        parts.append(f"*{new_tokens} new tokens, {'stopped at EOS' if stopped_at_eos else 'did NOT stop at EOS'}*")
    return "\n".join(parts) + "\n"



def write_visualization(materializer: BaseMaterializer, name: str, payload: bytes | str) -> str:
    """Write `payload` next to the artifact as file `name`; the path, as ZenML's visualizations map wants it."""
    path = os.path.join(materializer.uri, name)
    with materializer.artifact_store.open(path, "wb") as fh:
        fh.write(payload.encode() if isinstance(payload, str) else payload)
    return path.replace("\\", "/")


class TrainReportMaterializer(PydanticMaterializer):
    """A TrainReport as JSON (like any pydantic model) plus its loss curve and a summary card."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TrainReport,)

    def save_visualizations(self, data: TrainReport) -> dict[str, VisualizationType]:
        return {
            write_visualization(self, LOSS_CURVE, loss_curve_png(data)): VisualizationType.IMAGE,
            write_visualization(self, REPORT_CARD, report_markdown(data)): VisualizationType.MARKDOWN,
            **super().save_visualizations(data),
        }


class GenerationMaterializer(BuiltInMaterializer):
    """A generated text stored as ZenML stores any string, shown as Markdown beside its instruction."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (str,)
    SKIP_REGISTRATION: ClassVar[bool] = True  # only where a step asks for it, not for every str

    def save_visualizations(self, data: str) -> dict[str, VisualizationType]:
        card = generation_markdown(data, getattr(data, "instruction", None), getattr(data, "stopped_at_eos", None),
                                   getattr(data, "new_tokens", None))
        return {write_visualization(self, GENERATION_CARD, card): VisualizationType.MARKDOWN}
