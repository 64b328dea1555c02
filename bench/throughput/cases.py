"""The case names: `<unsloth|trl|bare>-<lora|qlora>`, then optional suffixes in a fixed order, each setting one
field of the case; and the recipe every case shares (sequence length, effective batch, LoRA targets).

A new suffix is one more row of SUFFIXES (in the place a name lists it) and what the case runners do with its
field; `twin_of(name, field)` names the case without it, the one a table compares it with.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from twinsft.config import LLAMA_LINEAR_MODULES

SEQ_LEN = 2048
EFFECTIVE_BATCH = 16
TARGETS = LLAMA_LINEAR_MODULES  # the recipe's LoRA targets: all seven linear projections
# Log-normal sample lengths (-len<median>): sigma 0.8 puts the mean at ~1.4 x the median; clipped to 32..2000.
LOGNORMAL_SIGMA, MIN_LEN, MAX_LEN = 0.8, 32, 2000
# Every headline case beside its real-length twin (median 350), and other medians so nothing is tuned to one.
DEFAULT_CASES = ("unsloth-lora-plan,unsloth-lora-plan-len350,unsloth-qlora-plan,unsloth-qlora-plan-len350,"
                 "trl-lora-plan,trl-lora-plan-len350,unsloth-lora,unsloth-lora-len350,trl-lora,trl-lora-len350,"
                 "unsloth-qlora,unsloth-qlora-len350,trl-qlora,trl-qlora-len350,bare-lora-mb2,bare-lora-mb8-nockpt,"
                 "unsloth-lora-plan-len100,unsloth-lora-plan-len1000")


BASE_PRECISIONS = {None: "auto", "-fp8": "fp8", "-fp8block": "fp8_block"}


def fail(message: str) -> NoReturn:
    """Bad input: one line, exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def lengths_of(text: str | None) -> str:
    """-len<median> -> 'len<median>' (a median within MIN_LEN..MAX_LEN), -hist -> 'hist', none -> 'one-sample'."""
    if text is None:
        return "one-sample"
    if text == "-hist":
        return "hist"
    median = int(text.removeprefix("-len"))
    if not MIN_LEN <= median <= MAX_LEN:
        raise ValueError(f"a median of {median} tokens is outside {MIN_LEN}..{MAX_LEN}")
    return text.removeprefix("-")


@dataclass(frozen=True)
class Suffix:
    """One optional part of a case name and the case field it sets from the text it matched (None: absent)."""

    field: str  # also the regex group's name
    regex: str  # of alternatives, the longer first where one starts another ("-fp8block|-fp8")
    value: Callable[[str | None], Any]  # a ValueError makes the name unknown
    bare: bool = False  # the bare loop takes it too


# In the order a name lists them.
SUFFIXES = (
    Suffix("micro_batch", r"-mb\d+", lambda text: int(text.removeprefix("-mb")) if text else 2, bare=True),
    Suffix("checkpointing", r"-nockpt", lambda text: text is None, bare=True),
    Suffix("plan", r"-plan", bool),
    Suffix("hfcount", r"-hfcount", bool),
    # model.base_precision: the frozen base in FP8 (row scales, or 128 x 128 blocks); its twin is the 16-bit base.
    Suffix("base_precision", r"-fp8block|-fp8", lambda text: BASE_PRECISIONS[text], bare=True),
    Suffix("lengths", r"-len\d+|-hist", lengths_of),
)
CASE = re.compile(r"^(?P<kind>unsloth|trl|bare)-(?P<mode>lora|qlora)"
                  + "".join(f"(?P<{s.field}>{s.regex})?" for s in SUFFIXES) + "$")


def parse_case(name: str) -> dict[str, Any]:
    m = CASE.match(name)
    if m is None or (m["kind"] == "bare" and any(m[s.field] for s in SUFFIXES if not s.bare)):
        fail(f"unknown case '{name}'; see --help for the case grammar")
    if m["base_precision"] and (m["kind"] == "trl" or m["mode"] == "qlora"):  # as the config refuses them
        fail(f"unknown case '{name}': an FP8 base is Unsloth LoRA's (unsloth-lora-...-fp8, bare-lora-...-fp8)")
    try:
        fields = {s.field: s.value(m[s.field]) for s in SUFFIXES}
    except ValueError:
        fail(f"unknown case '{name}'; see --help for the case grammar")
    return {"name": name, "kind": m["kind"], "mode": m["mode"], **fields}


def twin_of(case: str, field: str = "lengths") -> str | None:
    """The case `case` is compared with: its name without the suffix setting `field` (None: it has none). For
    lengths, the one-sample-row twin of a real-length case."""
    m = CASE.match(case)
    if m is None or m[field] is None:
        return None
    return case[:m.start(field)] + case[m.end(field):]


def describe_lengths(case: dict) -> str:
    if case.get("lengths", "one-sample") == "one-sample":
        return f"one sample per row (every row over {SEQ_LEN} tokens)"
    if case["lengths"] == "hist":
        return f"histogram {case.get('histogram_file')}"
    return (f"log-normal median {case['lengths'].removeprefix('len')} sigma {LOGNORMAL_SIGMA} "
            f"clipped {MIN_LEN}..{MAX_LEN}")
