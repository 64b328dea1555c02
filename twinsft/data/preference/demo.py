"""The demo's preference pairs, made deterministically from the bundled twin data (no model, no randomness left).

Each twin row gives one pair with the same prompt and the first sentence of the twin answer (short pairs keep the
demo within minutes on two CPU cores), followed by a closing line: for
`chosen` an evidence-first one (measure, check, compare: the twin's habit), for `rejected` an overconfident one
(trust, skip the checks). The SFT data has neither kind, so the SFT model has no reason to prefer either; DPO has
to learn the preference. Lines are picked per row by a seeded draw, so every pair mixes them differently.

`python -m twinsft.data.preference.demo` rewrites twinsft/sample_data/twin_dpo.jsonl (the file ships with the
package; a test checks that it matches this code).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
TWIN_ROWS = SAMPLE_DATA / "twin.jsonl"
DEMO_PAIRS = SAMPLE_DATA / "twin_dpo.jsonl"
SEED = 23

EVIDENCE_FIRST = (
    "Try it on ten held-out prompts before you trust it.",
    "Measure it against a baseline before you change anything else.",
    "Write down the number you expect, then check it.",
    "Keep a small eval set and rerun it after every change.",
    "Log the loss curve and read a few outputs by hand.",
    "Compare it with the simplest baseline first.",
    "Check one real batch by hand before you scale up.",
    "Start small, measure, then decide.",
)
OVERCONFIDENT = (
    "Trust me, it will just work every time.",
    "No need to test it, the defaults are always right.",
    "This is the best approach and it never fails.",
    "Just scale it up, more compute fixes everything.",
    "Honestly, evaluation is a waste of time here.",
    "Everyone does it this way, so it must be correct.",
    "It is guaranteed to beat every other method.",
    "Skip the checks, they only slow you down.",
)


def first_sentence(text: str) -> str:
    cut = text.find(". ")
    return text if cut < 0 else text[: cut + 1]


def demo_pairs(rows: list[dict[str, str]], seed: int = SEED) -> list[dict[str, str]]:
    """One {prompt, chosen, rejected} pair per instruction/output row, in row order."""
    draw = random.Random(seed)
    pairs = []
    for row in rows:
        good, bad = draw.choice(EVIDENCE_FIRST), draw.choice(OVERCONFIDENT)
        answer = first_sentence(row["output"])
        pairs.append({"prompt": row["instruction"], "chosen": f"{answer} {good}", "rejected": f"{answer} {bad}"})
    return pairs


def render_file(source: Path = TWIN_ROWS) -> str:
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in demo_pairs(rows))


if __name__ == "__main__":
    DEMO_PAIRS.write_text(render_file())
    print(f"wrote {DEMO_PAIRS}")
