"""The dataset card of a preference mix: pairs per source, what was dropped and why, the lengths of prompt, chosen
and rejected answers, and one sample pair per source."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twinsft.data.dataset_card import CountTokens, length_summary, whitespace_tokens
from twinsft.data.preference.pairs import COLUMNS, PairStats

if TYPE_CHECKING:
    from datasets import Dataset

SAMPLE_CHARS = 200


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SAMPLE_CHARS else flat[:SAMPLE_CHARS] + "…"


def build_preference_card(ds: Dataset, stats: dict[str, PairStats], origins: dict[str, str],
                          count_tokens: CountTokens | None = None) -> tuple[str, dict[str, dict[str, float]]]:
    """The Markdown card, and the length summary of each column (for metadata)."""
    count = count_tokens or whitespace_tokens
    unit = "tokens" if count_tokens else "whitespace words"
    lengths = {c: length_summary(count(list(ds[c]))) for c in COLUMNS}
    lines = [f"# Preference pairs: {len(ds)} pairs from {len(stats)} source(s)", "",
             "| source | origin | read | kept | chosen = rejected | duplicates | sampled out |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, s in stats.items():
        lines.append(f"| {name} | {origins.get(name, '')} | {s.rows_read} | {s.rows} | {s.identical_dropped} | "
                     f"{s.duplicates_dropped} | {s.sampled_out} |")
    lines += ["", f"## Lengths ({unit}, without the Alpaca template and EOS)", "",
              "| column | min | p50 | p90 | p99 | max | mean |", "|---|---:|---:|---:|---:|---:|---:|"]
    for column, summary in lengths.items():
        lines.append(f"| {column} | " + " | ".join(str(summary[k]) for k in ("min", "p50", "p90", "p99", "max", "mean"))
                     + " |")
    lines += ["", "## One pair per source", ""]
    sources = list(ds["source"]) if "source" in ds.column_names else []
    for name in stats:
        if name in sources:
            row = ds[sources.index(name)]
            lines += [f"**{name}**", "", *(f"- {c}: {_clip(row[c])}" for c in COLUMNS), ""]
    return "\n".join(lines), lengths
