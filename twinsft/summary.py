"""What a run prints at the end: the generation, the loss drop, where the model is, how to look."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _output(run: Any, step: str, name: str) -> Any:
    return run.steps[step].outputs[name][0]


def print_summary(run: Any) -> None:
    report = _output(run, "train_sft", "train_report").load()
    generation = _output(run, "smoke_generate", "smoke_generation")
    meta = generation.run_metadata
    merged = _output(run, "push_merged", "merged_model").load()

    print("\nSteps:", ", ".join(f"{name} {step.status.value}" for name, step in run.steps.items()))
    print(f"\nSmoke generation ({'stopped at EOS' if meta.get('stopped_at_eos') else 'did NOT stop at EOS'}, "
          f"{meta.get('new_tokens')} new tokens)")
    print(f"  ### Instruction:\n  {meta.get('instruction')}\n  ### Response:")
    for line in (generation.load() or "<empty>").splitlines():
        print(f"  {line}")
    print(
        f"\nHeld-out eval loss: {report.eval_loss_before:.4f} -> {report.eval_loss_after:.4f} "
        f"({-100 * report.eval_loss_drop:+.1f}%)  [{report.backend} {report.mode}, {report.precision}, "
        f"{report.steps} steps, {report.train_tokens:,} tokens at {report.tokens_per_s:,.0f} tokens/s]"
    )
    if merged.pushed:
        print(f"Pushed to the Hub: {merged.repo_url}")
    print(f"Merged {merged.dtype} model: {merged.local_dir}")
    if not (Path(merged.local_dir) / "config.json").is_file():
        print("  (that folder is gone since the cached run made it: rerun with --no-cache to rebuild it)")
    print(f"Look at run {run.name}: zenml pipeline runs list; zenml artifact version list")
    print('Dashboard: pip install "zenml[server]==0.98.0" && zenml login --local')
