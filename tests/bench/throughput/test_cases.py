"""The training benchmark's case names: the fields each part sets, the names refused, and each case's twin."""

import pytest

from bench.throughput.cases import TARGETS as BENCH_TARGETS
from bench.throughput.cases import parse_case, twin_of
from twinsft.config import LoraSpec


def test_case_names_set_their_fields():
    assert BENCH_TARGETS == LoraSpec().target_modules
    assert parse_case("unsloth-lora-mb4-nockpt") == {"name": "unsloth-lora-mb4-nockpt", "kind": "unsloth",
                                                     "mode": "lora", "micro_batch": 4, "checkpointing": False,
                                                     "plan": False, "hfcount": False, "base_precision": "auto",
                                                     "lengths": "one-sample"}
    assert parse_case("unsloth-lora-plan-hfcount")["hfcount"]
    for wrong in ("bare-lora-plan", "bare-lora-mb2-hfcount", "unsloth-lora-hfcount-plan"):
        with pytest.raises(SystemExit):
            parse_case(wrong)


def test_length_cases_and_their_twins(capsys):
    assert parse_case("unsloth-lora-plan-len350")["lengths"] == "len350"
    assert parse_case("trl-qlora-mb4-nockpt-hist")["lengths"] == "hist"
    assert parse_case("unsloth-lora-plan")["lengths"] == "one-sample"
    assert twin_of("unsloth-qlora-plan-len350") == "unsloth-qlora-plan" and twin_of("trl-lora-hist") == "trl-lora"
    assert twin_of("trl-lora") is None
    for wrong in ("bare-lora-mb8-len350", "unsloth-lora-len350-plan", "unsloth-lora-len5", "trl-lora-len100-hist"):
        with pytest.raises(SystemExit) as exit_:
            parse_case(wrong)
        assert exit_.value.code == 2
    assert capsys.readouterr().err.count("\n") == 4  # one line each


def test_a_twin_can_be_taken_along_any_suffix():
    """What a case is compared with, by the field its suffix sets: the name without that suffix, wherever it is."""
    assert twin_of("bare-lora-mb8-nockpt", "micro_batch") == "bare-lora-nockpt"
    assert twin_of("unsloth-lora-plan-len350", "plan") == "unsloth-lora-len350"
    assert twin_of("unsloth-lora-plan-len350", "hfcount") is None
    assert parse_case("bare-lora")["micro_batch"] == 2 and parse_case("bare-lora")["checkpointing"]


def test_fp8_cases_and_their_16bit_base_twins(capsys):
    assert parse_case("unsloth-lora-mb4-nockpt-fp8-len350")["base_precision"] == "fp8"
    assert parse_case("unsloth-lora-plan-fp8block")["base_precision"] == "fp8_block"
    assert parse_case("bare-lora-mb8-nockpt-fp8")["base_precision"] == "fp8"
    assert twin_of("unsloth-lora-mb4-nockpt-fp8-len350", "base_precision") == "unsloth-lora-mb4-nockpt-len350"
    assert twin_of("unsloth-lora-mb4-nockpt-fp8-len350") == "unsloth-lora-mb4-nockpt-fp8"  # its one-sample twin
    assert twin_of("unsloth-lora-plan-fp8block", "base_precision") == "unsloth-lora-plan"
    for wrong in ("trl-lora-plan-fp8", "unsloth-qlora-plan-fp8", "unsloth-lora-len350-fp8", "unsloth-lora-fp8-plan"):
        with pytest.raises(SystemExit) as exit_:
            parse_case(wrong)
        assert exit_.value.code == 2
    assert capsys.readouterr().err.count("\n") == 4
