"""The texts a case trains on: random vocabulary tokens, every row longer than a packed sequence (one sample per
row) or of lengths drawn from a log-normal by median or from a dataset's histogram (several samples per row)."""

from __future__ import annotations

from pathlib import Path

from bench.throughput.cases import LOGNORMAL_SIGMA, MAX_LEN, MIN_LEN, SEQ_LEN, fail


def sample_lengths(lengths: str, total_tokens: int, seed: int = 0,
                   histogram: list[tuple[int, int, int]] | None = None) -> list[int]:
    """Token lengths summing to at least `total_tokens`: log-normal by median ('len350') or from a histogram."""
    import math
    import random

    rng = random.Random(seed)
    if lengths == "hist":
        assert histogram, "-hist needs a histogram"
        weights = [rows for _, _, rows in histogram]

        def draw() -> int:
            low, high, _ = rng.choices(histogram, weights)[0]
            return rng.randint(low, high)
    else:
        mu = math.log(int(lengths.removeprefix("len")))

        def draw() -> int:
            return int(min(MAX_LEN, max(MIN_LEN, rng.lognormvariate(mu, LOGNORMAL_SIGMA))))
    out: list[int] = []
    while sum(out) < total_tokens:
        out.append(min(draw(), SEQ_LEN))  # longer rows are truncated to max_length by TRL
    return out


def rows_of_lengths(tokenizer_dir: Path, lengths: list[int], seed: int = 0) -> list[str]:
    """Texts of random vocabulary tokens, each about its length once tokenized (decoding can merge a few)."""
    import random

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rng = random.Random(seed)
    low, high = 300, min(len(tok), 32000)
    rows = []
    for n in lengths:
        # Round trip once and cut: the second decode of canonical tokens keeps the count closer to n.
        ids = tok(tok.decode([rng.randrange(low, high) for _ in range(n)]), add_special_tokens=False)["input_ids"]
        rows.append(tok.decode(ids[:n]))
    return rows


def long_rows(tokenizer_dir: Path, n: int, seed: int = 0) -> list[str]:
    """n texts of random vocabulary tokens, each longer than SEQ_LEN once tokenized."""
    import random

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rng = random.Random(seed)
    low, high = 300, min(len(tok), 32000)  # ordinary word pieces, no special tokens
    rows = []
    for _ in range(n):
        text = tok.decode([rng.randrange(low, high) for _ in range(int(SEQ_LEN * 1.3))])
        assert len(tok(text)["input_ids"]) > SEQ_LEN
        rows.append(text)
    return rows


def read_histogram(path: Path | None) -> list[tuple[int, int, int]]:
    """The --histogram file of -hist cases; a missing or bad one is a one-line error."""
    from twinsft.data.dataset_card import read_length_histogram

    if path is None:
        fail("a -hist case needs --histogram FILE (python -m bench.length_histogram writes one)")
    try:
        return read_length_histogram(path)
    except ValueError as e:
        fail(str(e))
