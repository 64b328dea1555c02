"""What a run prints at the end: the generation, the loss drop, base vs tuned, where the model is, how to look."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from twinsft.pipelines.steps_table import STEP_NAMES

if TYPE_CHECKING:
    from twinsft.generation.evaluate import EvalReport


def _output(run: Any, step: str, name: str) -> Any:
    return run.steps[step].outputs[name][0]


def _outputs(step: Any) -> str:
    """Each output's name with what matters most about it (rows, eval loss, EOS, where)."""
    parts = []
    for name, versions in step.outputs.items():
        meta = versions[0].run_metadata
        if "rows" in meta:
            parts.append(f"{name} ({meta['rows']} rows)")
        elif "eval_loss_after" in meta and name == "train_report":
            parts.append(f"{name} (eval loss {meta['eval_loss_before']:.3f} -> {meta['eval_loss_after']:.3f})")
        elif name == "merged_model":
            where = meta.get("local_dir") or versions[0].uri
            parts.append(f"{name} ({where}{', pushed' if meta.get('pushed') else ''})")
        elif name == "export_result":
            continue  # the merged model's entry says it all
        elif "eval_samples" in meta:
            parts.append(f"{name} ({_evaluation_brief(meta)})")
        elif "promoted" in meta:
            parts.append(f"{name} ({'-> ' + meta['stage'] if meta['promoted'] else 'not promoted'})")
        elif "stopped_at_eos" in meta:
            parts.append(f"{name} ({meta.get('new_tokens')} tokens, {'EOS' if meta['stopped_at_eos'] else 'no EOS'})")
        else:
            parts.append(name)
    return ", ".join(parts)


def _evaluation_brief(meta: Any) -> str:
    n = meta["eval_samples"]
    if not n:
        return "off"
    return (f"reference loss {meta['eval_reference_loss_base']:.3f} -> {meta['eval_reference_loss_tuned']:.3f}, "
            f"EOS {round(meta['eval_eos_rate_base'] * n)}/{n} -> {round(meta['eval_eos_rate_tuned'] * n)}/{n}")


def evaluation_lines(report: EvalReport) -> list[str]:
    """Base vs tuned on the held-out rows: mean reference loss and EOS stops, as a small table."""
    if not report.rows:
        return ["Base vs tuned on held-out rows: off (generation.eval_samples is 0)"]
    n = report.samples
    base, tuned = report.mean_reference_loss("base"), report.mean_reference_loss("tuned")
    rows = [
        ("", "base", "tuned"),
        ("mean reference loss", f"{base:.4f}", f"{tuned:.4f}  ({report.reference_loss_change_text})"),
        ("stopped at EOS", f"{report.eos_stops('base')}/{n}", f"{report.eos_stops('tuned')}/{n}"),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return [
        f"Base vs tuned on held-out rows (the first {n} of {report.test_rows} in the test split, greedy, "
        f"at most {report.max_new_tokens} new tokens):",
        *(f"  {a.ljust(widths[0])}  {b.ljust(widths[1])}  {c}".rstrip() for a, b, c in rows),
    ]


def _seconds(step: Any) -> str:
    if step.start_time is None or step.end_time is None:
        return "-"
    return f"{(step.end_time - step.start_time).total_seconds():.1f}s"


def step_rows(run: Any) -> list[tuple[str, str, str, str]]:
    """(step, status, time, key outputs) per step, in the order of the pipeline's table (steps it does not list,
    such as a parent pipeline's own, after them as they ran)."""
    names = [name for name in STEP_NAMES if name in run.steps] + [n for n in run.steps if n not in STEP_NAMES]
    return [(name, run.steps[name].status.value, _seconds(run.steps[name]), _outputs(run.steps[name]))
            for name in names]


def step_table(run: Any) -> str:
    rows = [("step", "status", "time", "key outputs"), *step_rows(run)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)), row[3]]).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in [*widths, len(rows[0][3])]))
    return "\n".join(lines)


def export_result(run: Any) -> Any:
    """push_merged's ExportResult: its own artifact, or (runs made before the merged model was stored as files)
    the merged_model artifact itself. Never loads the model's files."""
    outputs = run.steps["push_merged"].outputs
    return (outputs.get("export_result") or outputs["merged_model"])[0].load()


def merged_lines(run: Any, merged: Any) -> list[str]:
    """Where the merged model is: the artifact (always, on a current run), output_dir, output_uri, the Hub."""
    artifact = _output(run, "push_merged", "merged_model")
    lines = []
    if "export_result" in run.steps["push_merged"].outputs:
        lines.append(f"Merged {merged.dtype} model: artifact merged_model version {artifact.version} "
                     f"in the artifact store at {artifact.uri}")
        lines.append(f"  load it on any machine: Client().get_artifact_version('{artifact.id}').load()  "
                     "(a local folder)")
        if merged.local_dir:
            lines.append(f"  saved at {merged.local_dir}")
    elif merged.local_dir:
        lines.append(f"Merged {merged.dtype} model: {merged.local_dir}")
    if merged.local_dir and not (Path(merged.local_dir) / "config.json").is_file():
        lines.append("  (that folder is gone since the cached run made it: rerun with --no-cache to rebuild it)")
    if merged.output_uri:
        lines.append(f"  copied to {merged.output_uri}")
    return lines


def print_summary(run: Any) -> None:
    report = _output(run, "train_sft", "train_report").load()
    generation = _output(run, "smoke_generate", "smoke_generation")
    meta = generation.run_metadata
    merged = export_result(run)

    from zenml.client import Client

    run = Client().get_pipeline_run(run.id)  # fresh: step end times and metadata written after the run returned
    print(f"\nRun {run.name}\n{step_table(run)}")
    print(f"\nSmoke generation ({'stopped at EOS' if meta.get('stopped_at_eos') else 'did NOT stop at EOS'}, "
          f"{meta.get('new_tokens')} new tokens)")
    print(f"  ### Instruction:\n  {meta.get('instruction')}\n  ### Response:")
    for line in (generation.load() or "<empty>").splitlines():
        print(f"  {line}")
    print(
        f"\nHeld-out {report.eval_loss_name}: {report.eval_loss_before:.4f} -> {report.eval_loss_after:.4f} "
        f"({report.eval_loss_change})  [{report.backend} {report.mode}, {report.precision}, "
        f"{report.steps} steps, {report.train_tokens:,} tokens at {report.tokens_per_s:,.0f} tokens/s]"
    )
    evaluation = run.steps["smoke_generate"].outputs.get("evaluation")
    if evaluation:  # a replay may reuse a smoke_generate made before the evaluation existed
        print("\n" + "\n".join(evaluation_lines(evaluation[0].load())))
    if merged.pushed:
        print(f"Pushed to the Hub: {merged.repo_url}")
    print("\n".join(merged_lines(run, merged)))
    for check in (merged.gguf or {}).values():
        match = "same greedy tokens" if check.greedy_match else f"greedy tokens differ at {check.first_mismatch}"
        print(f"GGUF {check.quantization}: {check.path} ({check.size_bytes / 2**20:,.0f} MiB, {match})")
    if merged.gguf_modelfile:
        print(f"  Ollama: cd {Path(merged.gguf_modelfile).parent} && ollama create <name> -f Modelfile")
    comet = _output(run, "train_sft", "train_report").run_metadata
    if comet.get("comet_experiment_url"):
        print(f"Comet experiment: {comet['comet_experiment_url']}")
    elif comet.get("comet_mode") == "offline":
        print(f"Comet offline experiment {comet['comet_experiment_key']}: upload the zip(s) in "
              f"{comet.get('comet_offline_directory')} with `comet upload <zip>`")
    if run.model_version is not None:
        print(f"ZenML model: {run.model_version.model.name} version {run.model_version.name}")
    promotion = run.steps["promote"].outputs.get("promotion") if "promote" in run.steps else None
    if promotion:  # runs made before the promote step have none
        print(f"Promotion: {promotion[0].load().line()}")
    print(f"Look at run {run.name}: zenml pipeline runs list; zenml artifact version list; "
          "`make dashboard` for the local dashboard")
