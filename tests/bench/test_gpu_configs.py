"""The GPU smoke configurations bench/gpu_pipeline.sh runs validate here, before a GPU call spends device time."""

from pathlib import Path

import pytest

from twinsft.cli.config_file import load_run
from twinsft.config import RunConfig, TwinRunConfig

CONFIGS = Path(__file__).resolve().parents[2] / "bench" / "configs"
SFT_CASES = sorted(p.stem.removeprefix("smoke-") for p in CONFIGS.glob("smoke-*.yaml"))
DPO_CASES = ["unsloth-lora", "unsloth-qlora", "trl-lora", "trl-qlora"]  # gpu_pipeline.sh's DPO_CASES


def test_gpu_pipeline_script_names_cases_that_exist():
    script = (CONFIGS.parent / "gpu_pipeline.sh").read_text()
    for case in SFT_CASES + DPO_CASES:
        assert case in script
    assert set(DPO_CASES) <= set(SFT_CASES)


@pytest.mark.parametrize("case", SFT_CASES)
def test_sft_case_validates(case):
    config = load_run(str(CONFIGS / f"smoke-{case}.yaml")).config
    assert type(config) is RunConfig and config.training.backend == case.split("-")[0]


@pytest.mark.parametrize("case", DPO_CASES)
def test_dpo_case_is_the_sft_case_then_dpo_on_its_merged_model(case):
    backend = case.split("-")[0]
    config = load_run([str(CONFIGS / f"smoke-{case}.yaml"), str(CONFIGS / "dpo" / f"{backend}.yaml")]).config
    sft = load_run(str(CONFIGS / f"smoke-{case}.yaml")).config
    assert isinstance(config, TwinRunConfig) and config.dpo.training.backend == backend
    assert config.model.load_in_4bit == case.endswith("qlora")
    # The SFT sections are the SFT case's, so its steps are cached from that case's run.
    assert config.model_dump(exclude={"dpo"}) == sft.model_dump()
    assert config.dpo.start.artifact == "merged_model" and config.dpo.training.max_steps > 0
