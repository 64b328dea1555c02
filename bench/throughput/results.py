"""What a case reports and where it goes: the result row a child process prints, the run saved in
bench/results/<date>-<card>.json after every case, and the table printed at the end."""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench.throughput import REPO
from bench.throughput.cases import EFFECTIVE_BATCH, SEQ_LEN, describe_lengths, twin_of


def result_row(case: dict, steps: list[tuple[float, int]], load_s: float, extra: dict,
               trace: Path | None = None) -> dict:
    """One case's row: the median tokens/s and step time over the measured steps, with the card and versions."""
    import torch

    from twinsft.runtime import device_name, library_versions

    rates = [tokens / seconds for seconds, tokens in steps]
    return {
        "case": case["name"], "mode": case["mode"], "lengths": describe_lengths(case), **extra,
        "tokens_per_s": round(statistics.median(rates), 1), "steps_measured": len(rates),
        "step_s": round(statistics.median(s for s, _ in steps), 3),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
        "load_s": round(load_s, 1), "seq_len": SEQ_LEN, "card": device_name(), "versions": library_versions(),
        **({"trace": str(trace)} if trace else {}),
    }


def child_result(proc: subprocess.CompletedProcess) -> dict[str, Any] | None:
    """The `RESULT {json}` line a case's child process printed; None (with its output's tail) when it failed."""
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        print(f"   failed (exit {proc.returncode}):\n{tail}", flush=True)
        return None
    return json.loads(line[len("RESULT "):])


def results_path(card: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", card.lower()).strip("-")
    return REPO / "bench" / "results" / f"{dt.date.today().isoformat()}-{slug}.json"


def save_run(run: dict, shape: dict, card: str) -> Path:
    """This invocation's run in bench/results/<date>-<card>.json, next to (or replacing) its earlier save."""
    path = results_path(card)
    saved = json.loads(path.read_text()) if path.exists() else {"runs": []}
    # One entry per invocation: rows are compared only within a run (one machine, one session).
    runs = [r for r in saved["runs"] if r["run"] != run["run"]]
    saved = {"card": card, "model_shape": shape, "effective_batch": EFFECTIVE_BATCH, "seq_len": SEQ_LEN,
             "runs": [*runs, run]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=1) + "\n")
    return path


def table(rows: list[dict], tflops: float, fpt: float) -> str:
    ceiling = tflops * 1e12 / fpt if tflops else 0.0
    by_case = {r["case"]: r for r in rows}
    out = [f"card: {rows[0]['card']}; bf16 matmul {tflops:.0f} TFLOP/s measured; {fpt / 1e9:.1f} GFLOP/token "
           f"useful at one 2048-token sample per row -> ceiling {ceiling:,.0f} tokens/s",
           "| case | backend | mode | micro-batch x accum | checkpointing | samples/row | tokens/s | "
           "vs one-sample twin | vs 16-bit-base twin | share of ceiling | vs TRL same mode | peak GiB | "
           "first-step loss (vs 16-bit-base twin) | attention for packed rows |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = by_case.get(f"trl-{r['mode']}")
        speedup = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x" if base else "-"
        share = f"{r['tokens_per_s'] / ceiling:.0%}" if ceiling else "-"
        twin = by_case.get(twin_of(r["case"]) or "")
        vs_twin = f"{r['tokens_per_s'] / twin['tokens_per_s']:.0%}" if twin else "-"
        bf16 = by_case.get(twin_of(r["case"], "base_precision") or "")
        vs_bf16 = f"{r['tokens_per_s'] / bf16['tokens_per_s']:.2f}x" if bf16 else "-"
        loss = f"{r['first_loss']:.5f}" if r.get("first_loss") is not None else "-"
        if bf16 and r.get("first_loss") is not None and bf16.get("first_loss") is not None:
            loss += f" ({(r['first_loss'] - bf16['first_loss']) / bf16['first_loss']:+.2%})"
        out.append(f"| {r['case']} | {r['backend']} | {r['mode']} | {r['micro_batch']} x {r['accumulation']} | "
                   f"{'on' if r['gradient_checkpointing'] else 'off'} | {r.get('samples_per_row', 1)} | "
                   f"{r['tokens_per_s']:,.0f} | {vs_twin} | {vs_bf16} | {share} | {speedup} | {r['peak_gib']} | "
                   f"{loss} | {r.get('attention', '-')} |")
    return "\n".join(out)
