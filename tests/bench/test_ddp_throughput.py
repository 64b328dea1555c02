"""The multi-GPU benchmark's cases, variants and table (its GPU runs are the lead's; bench/ddp_throughput.py)."""

import pytest

from bench.ddp_throughput import parse_case, table, variants


def row(variant: str, processes: int, tokens_per_s: float) -> dict:
    return {"case": "trl-lora", "variant": variant, "num_processes": processes, "micro_batch": 2,
            "accumulation": 8 // processes, "tokens_per_s": tokens_per_s, "run_tokens_per_s": tokens_per_s,
            "peak_gib": 20.0, "plan": "off"}


def test_cases_variants_and_the_speed_up_column():
    assert parse_case("unsloth-qlora") == {"name": "unsloth-qlora", "backend": "unsloth", "mode": "qlora"}
    for wrong in ("bare-lora", "trl-lora-mb4", "unsloth"):
        with pytest.raises(SystemExit):
            parse_case(wrong)
    assert variants("launcher", 0) == ["inproc", "launcher"]
    assert variants("gpus", 2) == ["inproc", "gpus2"]
    lines = table([row("inproc", 1, 6000.0), row("gpus2", 2, 11400.0)]).splitlines()
    assert "| trl-lora | gpus2 | 2 | 2 x 4 x 2 | 11,400 | 1.900x |" in lines[3]
