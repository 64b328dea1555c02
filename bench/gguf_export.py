"""The GGUF export on the demo model: each file's size and how close it computes to the merged model.

    python -m bench.gguf_export [--quantizations f16,q8_0] [--out bench/results/<date>-cpu-<name>-gguf.json]

The demo model (SmolLM2-135M-Instruct, saved as the export saves a merged model, bf16; built once under
outputs/bench/artifact-io/) is copied to a temporary folder and exported with `twinsft.export.gguf.export_gguf`,
exactly as `push_merged` does with `export.gguf: [f16, q8_0]`: written tensor by tensor, then each file loaded
back with transformers' GGUF reader and compared with the merged model on the export's probe prompt (float32).
Sizes and logit differences do not depend on the machine; the seconds do.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quantizations", default="f16,q8_0")
    parser.add_argument("--tmp", default=str(REPO / "outputs" / "bench" / "artifact-io"))
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    from bench.artifact_io import demo_merged, folder_bytes
    from twinsft.export.gguf import export_gguf

    base = Path(args.tmp).resolve()
    merged = demo_merged(base / "demo-merged")
    safetensors = sum(p.stat().st_size for p in merged.glob("*.safetensors"))
    work = Path(tempfile.mkdtemp(dir=base, prefix="gguf-"))
    try:
        model_dir = work / "merged"
        shutil.copytree(merged, model_dir)
        start = time.perf_counter()
        result = export_gguf(model_dir, args.quantizations.split(","), name="demo")
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    f16 = result.files.get("f16")
    rows = [{"quantization": q, "bytes": c.size_bytes, "vs_safetensors": round(c.size_bytes / safetensors, 3),
             "vs_f16": round(c.size_bytes / f16.size_bytes, 3) if f16 else None,
             "max_logit_diff": c.max_logit_diff, "greedy_match": c.greedy_match, "first_mismatch": c.first_mismatch}
            for q, c in result.files.items()]
    print(f"\nmerged model: {folder_bytes(merged):,} bytes ({safetensors:,} of safetensors, bf16); "
          f"{result.verified_tokens} greedy tokens compared; export and verification {seconds:.1f} s")
    print(f"{'file':<6} {'bytes':>13} {'vs safetensors':>15} {'vs f16':>7} {'max logit diff':>15} {'greedy':>7}")
    for row in rows:
        vs_f16 = f"{row['vs_f16']:.1%}" if row["vs_f16"] is not None else "-"
        print(f"{row['quantization']:<6} {row['bytes']:>13,} {row['vs_safetensors']:>15.1%} {vs_f16:>7} "
              f"{row['max_logit_diff']:>15.4g} {'same' if row['greedy_match'] else 'differs':>7}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    if args.out:
        record = {"date": date.today().isoformat(), "machine": f"{platform.node()} ({os.cpu_count()} CPUs)",
                  "model": "SmolLM2-135M-Instruct (demo), merged bf16", "safetensors_bytes": safetensors,
                  "verified_tokens": result.verified_tokens, "seconds": round(seconds, 1), "rows": rows,
                  "warnings": result.warnings}
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
