"""Does an FP8 base train like the 16-bit one? The same rows, seed and steps for a case and its 16-bit-base twin.

    python -m bench.loss_trajectory --tokenizer DIR [--cases unsloth-lora-mb4-nockpt-len350,...-fp8-len350]
                                    [--steps 30] [--tolerance 0.01]

Each case (the training benchmark's names: bench/train_throughput.py --help) trains --steps optimizer steps in a
process of its own through `build_trainer`, the step's own code, on the benchmark's random-token rows, and is
evaluated on held-out rows drawn the same way with another seed (before and after training). Random tokens from
~32k of the vocabulary leave a model one thing to learn, which tokens occur: the held-out loss falls from the
random model's ~12.6 toward ln(31,700) = 10.36, the same for every case, so it measures how well training went.
With --text sample the rows are the project's sample instructions instead (learnable English; every 10th held
out). A case with -fp8 / -fp8block passes when its last training loss and its held-out loss after training are within
--tolerance (relative) of its twin's. The run goes to bench/results/<date>-<card>-loss-trajectory.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.throughput import REPO
from bench.throughput.cases import EFFECTIVE_BATCH, SEQ_LEN, TARGETS, parse_case, twin_of
from bench.throughput.results import child_result, results_path

EVAL_ROWS = 32  # packed held-out rows of up to SEQ_LEN tokens


def sample_texts(tokenizer_dir: Path, eval_share: float = 0.1) -> tuple[list[str], list[str]]:
    """The project's sample rows (twinsft/sample_data: English instructions and answers) in the Alpaca template:
    learnable text, every 10th row held out."""
    import json

    from transformers import AutoTokenizer

    from twinsft.data.alpaca import ALPACA

    eos = AutoTokenizer.from_pretrained(str(tokenizer_dir)).eos_token
    rows = [json.loads(line) for name in ("twin", "general")
            for line in (REPO / "twinsft" / "sample_data" / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    texts = [ALPACA.training_text(r["instruction"], r["output"], eos) for r in rows]
    every = round(1 / eval_share)
    return [t for i, t in enumerate(texts) if i % every], [t for i, t in enumerate(texts) if not i % every]


def train_case(case: dict[str, Any], model_dir: Path, tokenizer_dir: Path, steps: int, eval_rows: int,
               text: str = "random") -> dict:
    """One case trained for `steps` optimizer steps; its losses, held-out loss, speed and peak. `text`: random
    (the benchmark's random-token rows of the case's lengths) or sample (the project's sample rows, repeated)."""
    if case["kind"] == "unsloth":
        import unsloth  # noqa: F401  (before trl/transformers)
    import torch
    from datasets import Dataset

    from bench.throughput.rows import long_rows, rows_of_lengths, sample_lengths
    from bench.throughput.timing import StepTimer
    from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
    from twinsft.runtime import device_name, library_versions
    from twinsft.training.fine_tune import build_trainer

    on_gpu = torch.cuda.is_available()
    mb = case["micro_batch"]
    model = ModelSpec(name=str(model_dir), max_seq_length=SEQ_LEN, load_in_4bit=case["mode"] == "qlora",
                      base_precision=case["base_precision"])
    training = TrainingSpec(
        backend=case["kind"], per_device_train_batch_size=mb, per_device_eval_batch_size=mb,
        gradient_accumulation_steps=EFFECTIVE_BATCH // mb, gradient_checkpointing=case["checkpointing"],
        memory_plan="auto" if case["plan"] else "off", max_steps=steps, warmup_steps=max(1, steps // 10),
        logging_steps=1, report_to=[], optim="adamw_8bit" if on_gpu else "adamw_torch", save_steps=None,
        checkpoint_dir=str(REPO / "outputs" / "bench" / f"trajectory-{case['name']}"),
    )

    def texts(rows: int, seed: int) -> list[str]:
        if case["lengths"] == "one-sample":
            return long_rows(tokenizer_dir, rows, seed=seed)
        return rows_of_lengths(tokenizer_dir, sample_lengths(case["lengths"], int(rows * SEQ_LEN * 1.15), seed=seed),
                               seed=seed)

    if text == "sample":
        train_texts, eval_texts = sample_texts(tokenizer_dir)
    else:
        train_texts, eval_texts = texts((steps + 1) * EFFECTIVE_BATCH, 0), texts(eval_rows, 1)
    train_ds = Dataset.from_dict({"text": train_texts})
    eval_ds = Dataset.from_dict({"text": eval_texts})
    timer = StepTimer(steps)
    setup = build_trainer(train_ds, eval_ds, model, LoraSpec(r=32, alpha=32, target_modules=TARGETS), training,
                          callbacks=[timer.callback()])
    before = float(setup.trainer.evaluate()["eval_loss"])
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    setup.trainer.train()
    train_s = time.perf_counter() - t0
    after = float(setup.trainer.evaluate()["eval_loss"])
    losses = [round(float(h["loss"]), 5) for h in setup.trainer.state.log_history if "loss" in h and "step" in h]
    rates = [tokens / seconds for seconds, tokens in timer.steps(2)]
    return {
        "case": case["name"], "steps": steps, "train_losses": losses, "final_train_loss": losses[-1],
        "last5_train_loss": round(statistics.mean(losses[-5:]), 5), "eval_loss_before": round(before, 5),
        "eval_loss_after": round(after, 5), "eval_rows": len(eval_ds), "train_s": round(train_s, 1),
        "tokens_per_s": round(statistics.median(rates), 1) if rates else None,
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if on_gpu else None,
        "micro_batch": setup.training.per_device_train_batch_size,
        "accumulation": setup.training.gradient_accumulation_steps, "card": device_name(),
        "versions": library_versions(),
    }


def compare(rows: list[dict], tolerance: float) -> list[dict]:
    """Each FP8 case against its 16-bit-base twin: relative differences and whether both are within tolerance."""
    by_case = {r["case"]: r for r in rows}
    out = []
    for r in rows:
        twin = by_case.get(twin_of(r["case"], "base_precision") or "")
        if twin is None:
            continue
        train = (r["final_train_loss"] - twin["final_train_loss"]) / twin["final_train_loss"]
        held = (r["eval_loss_after"] - twin["eval_loss_after"]) / twin["eval_loss_after"]
        out.append({"case": r["case"], "twin": twin["case"], "final_train_loss_rel": round(train, 5),
                    "eval_loss_rel": round(held, 5), "speed_vs_twin": round(r["tokens_per_s"] / twin["tokens_per_s"], 3)
                    if r.get("tokens_per_s") and twin.get("tokens_per_s") else None,
                    "passed": abs(train) <= tolerance and abs(held) <= tolerance})
    return out


def table(rows: list[dict], verdicts: list[dict], tolerance: float) -> str:
    out = [f"card: {rows[0]['card']}; {rows[0]['steps']} optimizer steps of {EFFECTIVE_BATCH} rows, same rows and seed",
           "| case | micro-batch x accum | loss step 1 | final train loss | mean of last 5 | held-out before | "
           "held-out after | tokens/s | peak GiB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['case']} | {r['micro_batch']} x {r['accumulation']} | {r['train_losses'][0]:.4f} | "
                   f"{r['final_train_loss']:.4f} | {r['last5_train_loss']:.4f} | {r['eval_loss_before']:.4f} | "
                   f"{r['eval_loss_after']:.4f} | {r['tokens_per_s'] or 0:,.0f} | {r['peak_gib']} |")
    out += [f"against the 16-bit-base twin (pass: both within {tolerance:.0%}):",
            "| case | twin | final train loss | held-out loss | speed | pass |", "|---|---|---|---|---|---|"]
    out += [f"| {v['case']} | {v['twin']} | {v['final_train_loss_rel']:+.2%} | {v['eval_loss_rel']:+.2%} | "
            f"{v['speed_vs_twin'] or 0:.2f}x | {'yes' if v['passed'] else 'NO'} |" for v in verdicts]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="unsloth-lora-mb4-nockpt-len350,unsloth-lora-mb4-nockpt-fp8-len350")
    parser.add_argument("--shape", default="llama-3.1-8b", help="a bench.random_llama shape")
    parser.add_argument("--model-dir", type=Path, help="default outputs/bench/random-<shape>, created if missing")
    parser.add_argument("--tokenizer", type=Path, required=True, help="saved tokenizer (bench.random_llama)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--eval-rows", type=int, default=EVAL_ROWS)
    parser.add_argument("--text", choices=("random", "sample"), default="random",
                        help="random: the benchmark's random-token rows (nothing to learn but which tokens occur); "
                        "sample: the project's sample rows in the Alpaca template, every 10th held out (learnable; "
                        "a step packs them all, so 30 steps are ~30 epochs)")
    parser.add_argument("--tolerance", type=float, default=0.01, help="largest relative loss difference to the twin")
    parser.add_argument("--case-timeout", type=float, metavar="S", help="stop a case after S seconds, go on")
    parser.add_argument("--child", metavar="CASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model_dir = args.model_dir or REPO / "outputs" / "bench" / f"random-{args.shape}"
    if args.child:
        row = train_case(parse_case(args.child), args.model_dir, args.tokenizer, args.steps, args.eval_rows,
                         args.text)
        print("RESULT " + json.dumps(row), flush=True)
        return
    cases = [parse_case(c)["name"] for c in args.cases.split(",") if c]
    subprocess.run([sys.executable, "-m", "bench.random_llama", "--shape", args.shape, "--tokenizer",
                    str(args.tokenizer), "--out", str(args.model_dir)], cwd=REPO, check=True)
    rows = []
    for name in cases:
        print(f"== {name}", flush=True)
        cmd = [sys.executable, "-m", "bench.loss_trajectory", "--child", name, "--model-dir", str(args.model_dir),
               "--tokenizer", str(args.tokenizer), "--steps", str(args.steps), "--eval-rows", str(args.eval_rows),
               "--text", args.text]
        try:
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=args.case_timeout)
        except subprocess.TimeoutExpired:
            print(f"   stopped after {args.case_timeout} s", flush=True)
            continue
        row = child_result(proc)
        if row is not None:
            print(f"   {json.dumps(row)}", flush=True)
            rows.append(row)
    if not rows:
        raise SystemExit("no case finished")
    verdicts = compare(rows, args.tolerance)
    path = results_path(rows[0]["card"])
    path = path.with_name(path.stem + "-loss-trajectory.json")
    saved = json.loads(path.read_text()) if path.exists() else {"runs": []}
    saved["runs"].append({"run": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"), "shape": args.shape,
                          "text": args.text,
                          "tolerance": args.tolerance, "rows": rows, "verdicts": verdicts})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=1) + "\n")
    print(table(rows, verdicts, args.tolerance))
    print(f"rows written to {path}")


if __name__ == "__main__":
    main()
