"""Export the token-length histogram of a run config's training mix, for `bench.train_throughput --histogram`.

    python -m bench.length_histogram --config configs/lora.yaml --out lengths.json [--bins 64]

The mix is read as `load_datasets` reads it (Hub sources need the network and, if gated, a token)
and each row is measured as the dataset card measures it: the Alpaca training text in the
config's model's tokens (EOS not counted). The file holds the card's summary and its histogram
in finer buckets; the benchmark then packs rows of those lengths.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a run config (YAML), as run.py takes")
    parser.add_argument("--out", type=Path, required=True, help="where to write the histogram (JSON)")
    parser.add_argument("--bins", type=int, default=64)
    args = parser.parse_args(argv)

    from twinsft.cli.config_file import load_run_config
    from twinsft.data.dataset_card import length_histogram, training_texts
    from twinsft.data.mix import load_mix_report
    from twinsft.errors import UserError
    from twinsft.models import load_tokenizer, token_lengths

    try:
        _, cfg = load_run_config(args.config)
        ds, _ = load_mix_report(cfg.data)
    except UserError as e:  # a bad config or data file: one line, exit 2
        print(f"error: {e}", file=sys.stderr)
        return 2
    source = cfg.model.source()
    lengths = token_lengths(load_tokenizer(source), training_texts(ds))
    hist = length_histogram(lengths, unit=f"tokens ({source.name} tokenizer)", bins=args.bins)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(hist, indent=1) + "\n")
    s = hist["summary"]
    print(f"{len(lengths):,} rows, tokens p50 {s['p50']} p90 {s['p90']} max {s['max']} mean {s['mean']}: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
