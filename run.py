"""Run the SFT pipeline: `python run.py --config configs/lora.yaml [--no-cache] [--from-step STEP]`;
`python run.py summary RUN` prints a finished run's summary (a run an asynchronous orchestrator ran);
`python run.py promote VERSION --stage production` moves a model version on, with the promote step's checks;
`python run.py snapshot NAME --config FILE` stores the compiled pipeline on the ZenML server and
`python run.py rerun NAME [--set training.learning_rate=2e-4] [--wait]` has the server run it.

Bad input (config, data files, environment) ends with one line and exit status 2, before torch,
datasets or any model is loaded. The command line itself lives in `twinsft.cli.main`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from twinsft.cli.main import run_command

CONFIGS = Path(__file__).resolve().parent / "configs"


def main(argv: list[str] | None = None) -> int:
    return run_command(argv, config_dir=CONFIGS)


if __name__ == "__main__":
    sys.exit(main())
