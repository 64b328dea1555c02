"""A version's evidence: its run's held-out evaluation and export, or, for a staged version evaluated on other
rows, its merged model measured now on the candidate's rows (the same answers and losses smoke_generate
computes, on the merged weights)."""

from __future__ import annotations

import logging
from pathlib import Path

from twinsft.export import ExportResult
from twinsft.generation.evaluate import EvalReport, answers_for
from twinsft.generation.greedy import load_merged
from twinsft.promotion.decision import Evidence

log = logging.getLogger("twinsft.progress")


def export_verified(result: ExportResult) -> bool:
    """The merge was checked: logits against the adapter model and the reloaded copy's greedy tokens (a failed
    check raises in push_merged, as does an f16 GGUF file that differs; a quantized file that differs is a
    warning, as quantization may change tokens)."""
    return result.verified_tokens > 0


def evidence_of(version: str, report: EvalReport, export: ExportResult | None) -> Evidence | None:
    """The version's own evaluation (tuned vs its base); None when the run evaluated no rows."""
    if not report.rows:
        return None
    return Evidence(
        version=version, rows_digest=report.rows_digest, samples=report.samples,
        reference_loss=report.mean_reference_loss("tuned"), eos_rate=report.eos_rate("tuned"),
        base_reference_loss=report.mean_reference_loss("base"), base_eos_rate=report.eos_rate("base"),
        export_verified=export is not None and export_verified(export),
    )


def reevaluate(version: str, merged_dir: Path, rows_of: EvalReport) -> Evidence:
    """The merged model in `merged_dir` answered and scored on the rows of `rows_of` (another version's
    evaluation), with the same token budget."""
    import gc

    log.info("evaluating version %s on this run's %d held-out rows (it was evaluated on others)", version,
             rows_of.samples)
    model, tokenizer = load_merged(merged_dir)
    pairs = [(row.instruction, row.reference) for row in rows_of.rows]
    answers = answers_for(model, tokenizer, pairs, rows_of.max_new_tokens, f"version {version}")
    del model
    gc.collect()
    return Evidence(
        version=version, rows_digest=rows_of.rows_digest, samples=len(answers),
        reference_loss=sum(a.reference_loss for a in answers) / len(answers),
        eos_rate=sum(a.stopped_at_eos for a in answers) / len(answers), reevaluated=True,
    )
