"""DPO training throughput on one GPU: Unsloth's patched DPOTrainer against TRL + PEFT at the same settings,
through twinsft's own DPO trainer set-up (training.dpo.build_dpo_trainer), each backend in its own process
(Unsloth patches transformers and TRL on import).

    python -m bench.dpo_throughput --model-dir outputs/bench/random-llama-3.1-8b [--backends unsloth,trl]

The model is a random-weight Llama (bench.random_llama); pairs are real-length: prompts of 60-250 tokens, answers
of 150-450 (log-uniform), random words. Tokens/s counts the non-padding tokens of chosen and rejected sequences
(prompt included, as the policy and the reference read them), over the steps after the warm-up. Prints a table
and writes bench/results/<date>-<card>-dpo.json.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("measure", "the", "loss", "before", "you", "tune", "a", "model", "on", "held-out", "data", "and", "check",
         "one", "batch", "by", "hand", "LoRA", "rank", "matters", "less", "than", "clean", "labels", "ship", "it")


def text(rng: random.Random, low: int, high: int) -> str:
    n = int(math.exp(rng.uniform(math.log(low), math.log(high))))
    return " ".join(rng.choice(WORDS) for _ in range(n))


def pairs(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    return [{"prompt": text(rng, 60, 250), "chosen": text(rng, 150, 450), "rejected": text(rng, 150, 450)}
            for _ in range(n)]


def child(args: argparse.Namespace) -> None:
    from twinsft.runtime import import_unsloth_first

    import_unsloth_first(args.backend)
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from twinsft.config import DpoTrainingSpec, LoraSpec, ModelSpec
    from twinsft.data.preference.formatting import render_pairs
    from twinsft.training.dpo import build_dpo_trainer

    cuda = torch.cuda.is_available()  # a CPU run only checks this code (tests, the tiny shape)

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.marks: list[tuple[float, int]] = []

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if cuda:
                torch.cuda.synchronize()
            self.marks.append((time.perf_counter(), int(state.num_input_tokens_seen or 0)))

    model = ModelSpec(name=args.model_dir, max_seq_length=1024, load_in_4bit=args.qlora)
    steps = args.warmup + args.steps
    training = DpoTrainingSpec(
        backend=args.backend, beta=0.5, learning_rate=2e-6, max_steps=steps, warmup_steps=0,
        per_device_train_batch_size=args.batch, gradient_accumulation_steps=1, memory_plan="off",
        optim="adamw_8bit" if cuda else "adamw_torch", gradient_checkpointing=True,
        precision="bf16" if cuda else "fp32", save_steps=None, logging_steps=1, max_length=1024, dataloader_workers=0)
    timer = StepTimer()
    from transformers import AutoTokenizer

    eos = AutoTokenizer.from_pretrained(args.model_dir).eos_token
    rows = render_pairs(Dataset.from_list(pairs(args.batch * steps)), eos)
    setup = build_dpo_trainer(rows, None, model, LoraSpec(r=32, alpha=32), training, callbacks=[timer],
                              output_dir=Path(args.scratch))
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    setup.trainer.train()
    (t0, n0), (t1, n1) = timer.marks[args.warmup - 1], timer.marks[-1]
    print("@result " + json.dumps({
        "backend": setup.backend, "mode": "qlora" if args.qlora else "lora", "batch": args.batch,
        "tokens_per_s": round((n1 - n0) / (t1 - t0), 1), "step_s": round((t1 - t0) / args.steps, 3),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else 0.0,
        "steps_timed": args.steps, "device": torch.cuda.get_device_name() if cuda else "cpu",
        "loss_first": setup.trainer.state.log_history[0].get("loss")}),
        flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--backends", default="unsloth,trl")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--qlora", action="store_true")
    parser.add_argument("--scratch", default=str(Path(tempfile.gettempdir()) / "dpo-bench"))
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    results = []
    for backend in args.backends.split(","):
        cmd = [sys.executable, "-m", "bench.dpo_throughput", "--child", "--backend", backend, "--model-dir",
               args.model_dir, "--batch", str(args.batch), "--warmup", str(args.warmup), "--steps", str(args.steps),
               "--scratch", f"{args.scratch}-{backend}", *(["--qlora"] if args.qlora else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = [json.loads(line[8:]) for line in proc.stdout.splitlines() if line.startswith("@result ")]
        if proc.returncode != 0 or not found:
            print(f"{backend}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
            continue
        results.append(found[0])
    print(f"{'backend':<10}{'mode':<7}{'batch':>6}{'tokens/s':>11}{'step s':>9}{'peak GiB':>10}")
    for r in results:
        print(f"{r['backend']:<10}{r['mode']:<7}{r['batch']:>6}{r['tokens_per_s']:>11,.0f}{r['step_s']:>9}"
              f"{r['peak_gib']:>10}")
    if len(results) == 2 and results[1]["tokens_per_s"]:
        print(f"{results[0]['backend']} / {results[1]['backend']}: "
              f"{results[0]['tokens_per_s'] / results[1]['tokens_per_s']:.2f}x")
    if results:
        card = results[0]["device"].lower().replace(" ", "-")
        out = Path("bench/results") / f"{time.strftime('%Y-%m-%d')}-{card}-dpo.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"benchmark": "dpo_throughput", "model_dir": args.model_dir, "results": results},
                                  indent=1) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
