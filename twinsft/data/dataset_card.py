"""The dataset card of a training mix: a Markdown page the ZenML dashboard shows next to the data.

Rows per source (and what deduplication and sampling removed), the length distribution of the
training text in tokens, and a few sample rows from each source.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from twinsft.data.alpaca import ALPACA
from twinsft.data.sources.rows import SourceStats

if TYPE_CHECKING:
    from datasets import Dataset

CountTokens = Callable[[list[str]], list[int]]
SAMPLE_CHARS = 300


def whitespace_tokens(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def length_summary(lengths: Sequence[int]) -> dict[str, float]:
    ordered = sorted(lengths)
    return {
        "min": ordered[0],
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
        "mean": round(sum(ordered) / len(ordered), 1),
    }


def histogram(lengths: Sequence[int], bins: int = 8) -> list[tuple[int, int, int]]:
    """(low, high, rows) buckets of equal width covering min..max, inclusive."""
    low, high = min(lengths), max(lengths)
    width = max(1, math.ceil((high - low + 1) / bins))
    counts = [0] * math.ceil((high - low + 1) / width)
    for n in lengths:
        counts[(n - low) // width] += 1
    return [(low + i * width, low + (i + 1) * width - 1, c) for i, c in enumerate(counts)]


HISTOGRAM_FORMAT = "twinsft.length-histogram/1"


def length_histogram(lengths: Sequence[int], unit: str, bins: int = 64) -> dict:
    """The card's histogram as a file (JSON) that `bench.train_throughput --histogram` samples row lengths from.

    Finer than the card's 8 rows by default: the benchmark draws a bucket by its share of rows, then a
    length uniformly inside it.
    """
    return {"format": HISTOGRAM_FORMAT, "unit": unit, "rows": len(lengths), "summary": length_summary(lengths),
            "buckets": [list(b) for b in histogram(lengths, bins)]}


def read_length_histogram(path: Path) -> list[tuple[int, int, int]]:
    """(low, high, rows) buckets of a length-histogram file; ValueError with one line saying what is wrong."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"length histogram {path}: cannot read it as JSON ({e})") from None
    if not isinstance(raw, dict) or raw.get("format") != HISTOGRAM_FORMAT:
        raise ValueError(f"length histogram {path}: 'format' must be '{HISTOGRAM_FORMAT}' (export one with "
                         "python -m bench.length_histogram)")
    buckets = raw.get("buckets")
    ok = isinstance(buckets, list) and buckets and all(
        isinstance(b, list) and len(b) == 3 and all(isinstance(x, int) and x >= 0 for x in b) and 0 < b[0] <= b[1]
        for b in buckets)
    if not ok or not sum(b[2] for b in buckets):
        raise ValueError(f"length histogram {path}: 'buckets' must be [low, high, rows] triples of whole numbers, "
                         "1 <= low <= high, some rows")
    return [(b[0], b[1], b[2]) for b in buckets]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _excerpt(text: str) -> str:
    short = text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS] + " …"
    return "\n".join("    " + line for line in short.replace("\r", "").splitlines() or [""])


def training_texts(ds: Dataset) -> list[str]:
    """What each row becomes for training (Alpaca prompt + output), EOS left out: the length that matters."""
    return [ALPACA.training_text(i, o, "") for i, o in zip(ds["instruction"][:], ds["output"][:], strict=True)]


def build_card(
    ds: Dataset,
    stats: dict[str, SourceStats],
    origins: dict[str, str],
    fingerprints: dict[str, str],
    mix_fingerprint: str,
    count_tokens: CountTokens | None = None,
    tokenizer_name: str | None = None,
    samples_per_source: int = 2,
) -> tuple[str, dict[str, dict[str, float]]]:
    """The card as Markdown, and the length summary per source (plus `all`) for metadata."""
    unit = f"tokens ({tokenizer_name} tokenizer)" if count_tokens else "whitespace-separated words (no tokenizer given)"
    lengths = (count_tokens or whitespace_tokens)(training_texts(ds))
    sources = ds["source"][:]
    total = len(ds)
    out = [
        "# Dataset card: training mix",
        "",
        f"**{total:,} rows** from {len(stats)} source(s). Mix fingerprint `{mix_fingerprint[:16]}`.",
        "",
        "## Rows per source",
        "",
        "| source | from | rows read | duplicates dropped | sampled out | inputs folded | rows in mix | share "
        "| fingerprint |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in stats.items():
        share = f"{100 * s.rows / total:.1f}%" if total else "-"
        out.append(
            f"| {_cell(name)} | {_cell(origins.get(name, ''))} | {s.rows_read:,} | {s.duplicates_dropped:,} | "
            f"{s.sampled_out:,} | {s.inputs_folded:,} | {s.rows:,} | {share} | `{fingerprints.get(name, '')[:12]}` |"
        )

    summaries = {"all": length_summary(lengths)}
    for name in stats:
        own = [n for n, s in zip(lengths, sources, strict=True) if s == name]
        if own:
            summaries[name] = length_summary(own)
    out += [
        "",
        "## Length of the training text",
        "",
        f"Alpaca prompt + output per row, in {unit}.",
        "",
        "| source | min | p50 | p90 | p99 | max | mean |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, summary in summaries.items():
        label = "**all**" if name == "all" else _cell(name)
        cells = " | ".join(f"{summary[k]:,}" for k in ("min", "p50", "p90", "p99", "max", "mean"))
        out.append(f"| {label} | {cells} |")
    buckets = histogram(lengths)
    peak = max(c for _, _, c in buckets)
    out += ["", "| length | rows | |", "|---|---:|---|"]
    for low, high, count in buckets:
        out.append(f"| {low}–{high} | {count:,} | {'█' * round(20 * count / peak) if peak else ''} |")

    out += ["", "## Sample rows", ""]
    for name in stats:
        picked = [i for i, s in enumerate(sources) if s == name][:samples_per_source]
        for i in picked:
            out += [f"**{_cell(name)}**, row {i}", "", "Instruction:", "", _excerpt(ds[i]["instruction"]), "",
                    "Output:", "", _excerpt(ds[i]["output"]), ""]
    return "\n".join(out).rstrip() + "\n", summaries
