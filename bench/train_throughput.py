"""Training throughput of the `train_sft` code path on a Llama-3.1-8B-shaped model, one card, one table.

    python -m bench.train_throughput --tokenizer DIR [--cases unsloth-lora,trl-lora,...] [--steps 5]

Each case runs in its own process (Unsloth patches transformers on import, so a TRL + PEFT
baseline must never share a process with it) and builds its trainer with
`twinsft.training.fine_tune.build_trainer`, the function the pipeline step calls: same SFTConfig,
padding-free bfd packing of 2048-token sequences, adamw_8bit, bf16. By default every training row
is longer than 2048 tokens, so each packed sequence is one full 2048-token sample, as in a bare
loop. Real instruction data is a few hundred tokens a row, so a packed sequence holds several
samples: -len<median> and -hist draw the rows' token lengths from a distribution instead.

Cases (comma-separated):
  <backend>-<lora|qlora>[-mb<k>][-nockpt][-plan][-hfcount][-fp8|-fp8block][-len<median>|-hist]
                                   backend unsloth or trl; effective batch 16 sequences; default
                                   micro-batch 2 with checkpointing (the reference); -plan lets
                                   twinsft.training.memory_plan choose; -hfcount puts back transformers' token
                                   count and NaN filter (a GPU sync per micro-batch), to measure them;
                                   -len350: row lengths log-normal, median 350 tokens, sigma 0.8, clipped to
                                   32..2000; -hist: lengths from --histogram FILE (python -m bench.length_histogram
                                   exports one from a run config's mix, as its dataset card counts them);
                                   -fp8 / -fp8block (Unsloth LoRA only): model.base_precision fp8 / fp8_block,
                                   the frozen base in FP8 with row / 128x128 block scales, compared with its
                                   16-bit-base twin (the name without the suffix) in speed and first-step loss
  bare-<lora|qlora>-mb<k>[-nockpt][-fp8|-fp8block]
                                   a bare Unsloth loop (no Trainer): the speed floor our step is held to
Before timing a case whose packed sequences hold several samples, the first optimizer step's loss
(its 16 rows, micro-batch by micro-batch, weighted by tokens) is computed on the packed-attention
path the step uses and on the one-call-per-sample path it replaced (training.packed_attention); the
case fails if they differ by more than 1e-3.
A step is timed end to end, from one optimizer step's end to the next (GPU synchronised there):
data loading, logging and callbacks included, as in a real run. tokens/s is the median over
--steps steps after --warmup steps; peak is torch's max allocated. Each invocation is appended
to bench/results/<date>-<card>.json as one run, saved after each case (compare rows only within a
run), and its table printed. --profile DIR records one more step per case with torch.profiler, writes
DIR/<case>.json.gz and prints where the GPU waited (bench/gpu_gaps.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from bench.throughput import REPO
from bench.throughput.bare_loop import run_bare_case
from bench.throughput.cases import DEFAULT_CASES, parse_case
from bench.throughput.ceiling import flops_per_token, matmul_tflops
from bench.throughput.results import child_result, save_run, table
from bench.throughput.rows import read_histogram
from bench.throughput.trainer_case import LOSS_TOLERANCE, run_step_case


def child(args: argparse.Namespace) -> None:
    """One case (or the matmul rate) in this process: its result as one `RESULT {json}` line."""
    if args.child == "matmul":
        result = {"case": "matmul", "tflops": round(matmul_tflops(), 1)}
    else:
        case = parse_case(args.child)
        if case["kind"] == "bare":
            result = run_bare_case(case, args.model_dir, args.warmup, args.steps, args.profile)
        else:
            histogram = None
            if case["lengths"] == "hist":
                case["histogram_file"] = args.histogram.name
                histogram = read_histogram(args.histogram)
            result = run_step_case(case, args.model_dir, args.tokenizer, args.warmup, args.steps, args.profile,
                                   histogram, args.loss_tolerance)
    print("RESULT " + json.dumps(result), flush=True)


def run_child(case: str, args: argparse.Namespace) -> dict | None:
    """One case in a process of its own; its result row, or None when it failed or ran past --case-timeout."""
    cmd = [sys.executable, "-m", "bench.train_throughput", "--child", case, "--model-dir", str(args.model_dir),
           "--tokenizer", str(args.tokenizer), "--warmup", str(args.warmup), "--steps", str(args.steps),
           *(["--profile", str(args.profile)] if args.profile else []),
           *(["--histogram", str(args.histogram)] if args.histogram else []),
           "--loss-tolerance", str(args.loss_tolerance)]
    print(f"== {case}", flush=True)
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=args.case_timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        print(f"   stopped after {args.case_timeout} s:\n" + "\n".join(out.splitlines()[-10:]), flush=True)
        return None
    result = child_result(proc)
    if result is None:
        return None
    print(f"   {result}", flush=True)
    if result.get("trace"):
        from bench.gpu_gaps import kernel_time, summarize

        trace = Path(result.pop("trace"))
        print(summarize(trace), flush=True)
        print(kernel_time(trace), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=DEFAULT_CASES)
    parser.add_argument("--shape", default="llama-3.1-8b", help="a bench.random_llama shape")
    parser.add_argument("--model-dir", type=Path, help="default outputs/bench/random-<shape>, created if missing")
    parser.add_argument("--tokenizer", type=Path, required=True, help="saved tokenizer (bench.random_llama)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--profile", type=Path, metavar="DIR", help="also profile one step per case into DIR")
    parser.add_argument("--histogram", type=Path, metavar="FILE",
                        help="token-length histogram for -hist cases (python -m bench.length_histogram)")
    parser.add_argument("--loss-tolerance", type=float, default=LOSS_TOLERANCE,
                        help="largest first-micro-batch loss difference, packed-attention path against the previous")
    parser.add_argument("--case-timeout", type=float, metavar="S", help="stop a case after S seconds, go on")
    parser.add_argument("--child", metavar="CASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model_dir = args.model_dir or REPO / "outputs" / "bench" / f"random-{args.shape}"
    if args.child:
        return child(args)

    cases = [parse_case(c) for c in args.cases.split(",") if c]
    if any(c["lengths"] == "hist" for c in cases):
        read_histogram(args.histogram)  # a bad file fails here, before any model is built
    # In a process of its own: building it here would leave this process holding GPU memory that
    # every case then lacks (seen: a case ran out of memory beside 31 GiB held by the parent).
    subprocess.run([sys.executable, "-m", "bench.random_llama", "--shape", args.shape, "--tokenizer",
                    str(args.tokenizer), "--out", str(args.model_dir)], cwd=REPO, check=True)
    matmul = run_child("matmul", args)
    run = {"run": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
           "bf16_matmul_tflops": (matmul or {}).get("tflops", 0.0), "rows": []}
    shape = {"name": args.shape, "flops_per_token": flops_per_token(args.model_dir)}
    new: list[dict] = []
    path = None
    for case in cases:
        row = run_child(case["name"], args)
        if row is None:
            continue
        new.append({**row, "model_shape": args.shape})
        # Saved after every case: a run cut short (a time limit on a lent machine) keeps its rows.
        path = save_run(run | {"rows": new}, shape, new[0]["card"])
    if not new:
        raise SystemExit("no case finished")
    print(f"run {run['run']}")
    print(table(new, run["bf16_matmul_tflops"], shape["flops_per_token"]))
    print(f"rows written to {path}")


if __name__ == "__main__":
    main()
