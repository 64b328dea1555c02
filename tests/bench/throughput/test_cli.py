"""`python -m bench.train_throughput`: the command docs and bench/gpu_pipeline.sh name, with its case grammar."""

import subprocess
import sys

from tests.helpers import ROOT


def test_help_prints_the_case_grammar_and_the_options():
    proc = subprocess.run([sys.executable, "-m", "bench.train_throughput", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "<backend>-<lora|qlora>[-mb<k>][-nockpt][-plan][-hfcount][-fp8|-fp8block][-len<median>|-hist]" in proc.stdout
    assert "bare-<lora|qlora>-mb<k>[-nockpt][-fp8|-fp8block]" in proc.stdout
    for option in ("--cases", "--shape", "--tokenizer", "--histogram", "--loss-tolerance", "--case-timeout"):
        assert option in proc.stdout
    assert "--child" not in proc.stdout  # the parent's way of running one case


def test_an_unknown_case_stops_before_any_model_is_built(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.train_throughput", "--tokenizer", str(tmp_path),
                           "--cases", "trl-lora,trl-lora-fp4"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "error: unknown case 'trl-lora-fp4'; see --help for the case grammar\n"
