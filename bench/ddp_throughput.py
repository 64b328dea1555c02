"""Training throughput through `twinsft.training.launch.train` (the `train_sft` step's call): in the step's
process, through torchrun with one process, and on N GPUs (DDP), one table.

    python -m bench.ddp_throughput --tokenizer DIR --compare launcher [--cases unsloth-lora,trl-lora]
    python -m bench.ddp_throughput --tokenizer DIR --compare gpus [--gpus 2] [--cases ...]

--compare launcher (one GPU): each case in this process's way (`num_processes: 1`, in-process) and
    through the launcher with one process (`TWINSFT_LAUNCHER=torchrun`). Target: within 3%.
--compare gpus (N GPUs): each case on 1 GPU (CUDA_VISIBLE_DEVICES=0, in-process) and on N GPUs
    (`num_processes: N`, torchrun). Target: N=2 at >= 1.85x the tokens/s of one.

Cases: <unsloth|trl>-<lora|qlora>. Every case trains the Llama-3.1-8B shape (random weights,
bench.random_llama) with the recipe's LoRA (r=32 on all seven projections), 2048-token bfd packing,
adamw_8bit, bf16, gradient checkpointing, and the recipe's effective batch of 16 sequences as
micro-batch 2 x accumulation 8 (on N GPUs 2 x 8/N each; `--plan` lets the memory plan choose per
rank instead). Rows have real lengths (bench.train_throughput's -len350: log-normal, median 350 tokens),
so a packed sequence holds several samples. tokens/s is the median, over --steps optimizer steps after
--warmup, of the tokens all ranks trained between two step logs divided by the time between them
(rank 0's MetricsCallback, the number a Comet chart shows); the run's own mean is printed beside it.
Each variant runs in its own process (Unsloth patches transformers on import, and a process must
not hold GPU memory another needs). Each invocation is appended to
bench/results/<date>-<card>-ddp.json as one run; compare rows only within a run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.throughput import REPO
from bench.throughput.cases import LOGNORMAL_SIGMA, SEQ_LEN, TARGETS
from bench.throughput.results import child_result, results_path
from bench.throughput.rows import rows_of_lengths, sample_lengths

EFFECTIVE_BATCH = 16
CASE = re.compile(r"^(?P<backend>unsloth|trl)-(?P<mode>lora|qlora)$")
LENGTHS = "len350"  # row lengths as bench.train_throughput draws them: log-normal, median 350 tokens


def parse_case(name: str) -> dict[str, str]:
    m = CASE.match(name)
    if not m:
        raise SystemExit(f"error: unknown case '{name}'; use <unsloth|trl>-<lora|qlora>")
    return {"name": name, "backend": m["backend"], "mode": m["mode"]}


def real_length_rows(tokenizer_dir: Path, tokens: int, seed: int = 0) -> list[str]:
    """Texts of random ordinary tokens, `tokens` in all, with the lengths of bench.train_throughput's -len350."""
    return rows_of_lengths(tokenizer_dir, sample_lengths(LENGTHS, tokens, seed), seed)


# ---------------------------------------------------------------- the child process: one case, one variant


def run_variant(case: dict[str, str], variant: str, model_dir: Path, tokenizer_dir: Path, warmup: int, steps: int,
                plan: bool) -> dict[str, Any]:
    """variant: `inproc` (the step's own process), `launcher` (torchrun, one process) or `gpus<N>` (N ranks)."""
    processes = int(variant[4:]) if variant.startswith("gpus") else 1
    if variant == "launcher":
        os.environ["TWINSFT_LAUNCHER"] = "torchrun"
    elif variant == "inproc" and case["backend"] == "unsloth":
        import unsloth  # noqa: F401  (before trl/transformers, as run.py does)
    import tempfile

    from datasets import Dataset

    from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
    from twinsft.runtime import cuda_available, device_name, library_versions
    from twinsft.training import TrainingJob, train

    on_gpu = cuda_available()
    model = ModelSpec(name=str(model_dir), max_seq_length=SEQ_LEN, load_in_4bit=case["mode"] == "qlora")
    training = TrainingSpec(
        backend=case["backend"], num_processes=processes, per_device_train_batch_size=2,
        gradient_accumulation_steps=EFFECTIVE_BATCH // 2, memory_plan="auto" if plan else "off",
        gradient_checkpointing=True, max_steps=warmup + steps, warmup_steps=1, logging_steps=1, report_to=[],
        optim="adamw_8bit" if on_gpu else "adamw_torch", save_steps=None,
        checkpoint_dir=str(REPO / "outputs" / "bench" / f"ddp-{os.getpid()}"),
    )
    rows = real_length_rows(tokenizer_dir, int((warmup + steps + 1) * EFFECTIVE_BATCH * SEQ_LEN * 1.05))
    train_ds, eval_ds = Dataset.from_dict({"text": rows}), Dataset.from_dict({"text": rows[:16]})
    rates: list[tuple[int, float]] = []

    def sink(metrics: dict[str, float], step: int) -> None:
        if "tokens_per_s" in metrics:
            rates.append((step, metrics["tokens_per_s"]))

    job = TrainingJob(train_ds, eval_ds, model, LoraSpec(r=32, alpha=32, target_modules=TARGETS), training,
                      Path(tempfile.mkdtemp(prefix="bench-adapter-")))
    report = train(job, metrics=sink)
    measured = [rate for step, rate in rates if step > warmup]
    return {
        "case": case["name"], "variant": variant, "backend": report.backend, "mode": case["mode"],
        "num_processes": report.num_processes, "micro_batch": report.micro_batch,
        "accumulation": report.gradient_accumulation_steps, "gradient_checkpointing": report.gradient_checkpointing,
        "plan": report.memory_plan, "tokens_per_s": round(statistics.median(measured), 1) if measured else 0.0,
        "steps_measured": len(measured), "run_tokens_per_s": round(report.tokens_per_s, 1),
        "train_tokens": report.train_tokens, "peak_gib": report.peak_memory_gib, "seq_len": SEQ_LEN,
        "card": device_name(), "versions": library_versions(),
    }


# ---------------------------------------------------------------- the parent: variants, table, JSON


def variants(compare: str, gpus: int) -> list[str]:
    return ["inproc", "launcher"] if compare == "launcher" else ["inproc", f"gpus{gpus}"]


def run_child(case: str, variant: str, args: argparse.Namespace) -> dict | None:
    cmd = [sys.executable, "-m", "bench.ddp_throughput", "--compare", args.compare, "--child", case,
           "--variant", variant, "--model-dir", str(args.model_dir), "--tokenizer", str(args.tokenizer),
           "--warmup", str(args.warmup), "--steps", str(args.steps), *(["--plan"] if args.plan else [])]
    env = dict(os.environ)
    if args.compare == "gpus" and variant == "inproc":
        env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]  # the one-GPU baseline
    print(f"== {case} {variant}", flush=True)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    result = child_result(proc)
    if result is None:
        return None
    print(f"   {result['tokens_per_s']:,.0f} tokens/s (median step), peak {result['peak_gib']} GiB", flush=True)
    return result


def table(rows: list[dict]) -> str:
    base = {r["case"]: r for r in rows if r["variant"] == "inproc"}
    out = ["| case | variant | processes | micro-batch x accum x processes | tokens/s (median step) | "
           "vs in-process | run mean tokens/s | peak GiB (largest rank) | plan |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = base.get(r["case"])
        ratio = f"{r['tokens_per_s'] / b['tokens_per_s']:.3f}x" if b and b["tokens_per_s"] else "-"
        out.append(f"| {r['case']} | {r['variant']} | {r['num_processes']} | {r['micro_batch']} x "
                   f"{r['accumulation']} x {r['num_processes']} | {r['tokens_per_s']:,.0f} | {ratio} | "
                   f"{r['run_tokens_per_s']:,.0f} | {r['peak_gib']} | {r['plan']} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", choices=("launcher", "gpus"), required=True)
    parser.add_argument("--cases", default="unsloth-lora,trl-lora,unsloth-qlora,trl-qlora")
    parser.add_argument("--gpus", type=int, default=0, help="--compare gpus: ranks of the DDP variant (default: all)")
    parser.add_argument("--shape", default="llama-3.1-8b", help="a bench.random_llama shape")
    parser.add_argument("--model-dir", type=Path, help="default outputs/bench/random-<shape>, created if missing")
    parser.add_argument("--tokenizer", type=Path, required=True, help="saved tokenizer (bench.random_llama)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--plan", action="store_true", help="memory_plan: auto (per rank) instead of 2 x 8")
    parser.add_argument("--child", metavar="CASE", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model_dir = args.model_dir or REPO / "outputs" / "bench" / f"random-{args.shape}"
    if args.child:
        result = run_variant(parse_case(args.child), args.variant, args.model_dir, args.tokenizer, args.warmup,
                             args.steps, args.plan)
        print("RESULT " + json.dumps(result), flush=True)
        return

    cases = [parse_case(c)["name"] for c in args.cases.split(",") if c]
    if args.compare == "gpus" and not args.gpus:
        import torch

        args.gpus = torch.cuda.device_count() if torch.cuda.is_available() else 2
    # Built in a process of its own: this one must hold no GPU memory while the variants run.
    subprocess.run([sys.executable, "-m", "bench.random_llama", "--shape", args.shape, "--tokenizer",
                    str(args.tokenizer), "--out", str(args.model_dir)], cwd=REPO, check=True)
    new = [{**r, "model_shape": args.shape} for r in
           (run_child(c, v, args) for c in cases for v in variants(args.compare, args.gpus)) if r]
    if not new:
        raise SystemExit("no case finished")
    run = {"run": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"), "compare": args.compare,
           "rows": new}
    path = results_path(new[0]["card"]).with_name(results_path(new[0]["card"]).stem + "-ddp.json")
    saved = json.loads(path.read_text()) if path.exists() else {"runs": []}
    saved = {"card": new[0]["card"], "effective_batch": EFFECTIVE_BATCH, "seq_len": SEQ_LEN,
             "sample_lengths": f"{LENGTHS}: log-normal, median 350, sigma {LOGNORMAL_SIGMA}",
             "runs": [*saved["runs"], run]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=1) + "\n")
    print(f"run {run['run']} ({args.compare})")
    print(table(new))
    print(f"rows written to {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
