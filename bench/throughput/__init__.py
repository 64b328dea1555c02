"""The training-throughput benchmark (`python -m bench.train_throughput`), by part: the case names (`cases`),
the rows a case trains on (`rows`), one case through the pipeline's trainer (`trainer_case`) or the bare loop
(`bare_loop`), how a step is timed (`timing`) against the card's ceiling (`ceiling`), and the results file and
table (`results`)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the checkout: child processes, outputs/ and bench/results/ hang off it
