"""The shipped DPO configs: dpo.yaml is the Handbook's second stage, twin.yaml chains lora.yaml and dpo.yaml."""

import pytest

from tests.helpers import ROOT
from twinsft.cli.config_file import load_run_config, parse_parameters
from twinsft.config import DpoRunConfig, TwinRunConfig
from twinsft.errors import ConfigError

CONFIGS = ROOT / "configs"
PREFS = {"sources": [{"name": "p", "path": "p.jsonl"}]}


def test_dpo_yaml_is_the_handbook_recipe():
    _, cfg = load_run_config("dpo.yaml", config_dir=CONFIGS)
    assert isinstance(cfg, DpoRunConfig)
    assert cfg.start.artifact == "merged_model" and cfg.start.zenml_model == "TwinLlama-3.1-8B"
    assert cfg.preference.sources[0].hub_id == "mlabonne/llmtwin-dpo"
    t = cfg.training
    assert (t.beta, t.learning_rate, t.num_train_epochs, t.loss_type) == (0.5, 2e-6, 1, ["sigmoid"])
    assert (cfg.lora.r, cfg.lora.alpha) == (32, 32) and cfg.model.name == "meta-llama/Llama-3.1-8B"


def test_twin_yaml_is_lora_yaml_then_dpo_yaml():
    _, twin = load_run_config("twin.yaml", config_dir=CONFIGS)
    _, sft = load_run_config("lora.yaml", config_dir=CONFIGS)
    _, dpo = load_run_config("dpo.yaml", config_dir=CONFIGS)
    assert isinstance(twin, TwinRunConfig)
    assert twin.model_dump(exclude={"dpo"}) == sft.model_dump()
    assert twin.dpo.training == dpo.training and twin.dpo.preference == dpo.preference


def test_dpo_demo_starts_from_the_demo_sft_model():
    _, cfg = load_run_config("dpo-demo.yaml", config_dir=CONFIGS)
    _, demo = load_run_config("demo.yaml", config_dir=CONFIGS)
    assert cfg.model == demo.model and cfg.start.zenml_model == "twinsft-demo-SmolLM2-135M"
    assert cfg.preference.sources[0].path == "twinsft/sample_data/twin_dpo.jsonl"


@pytest.mark.parametrize(("parameters", "message"), [
    ({"preference": PREFS, "start": {"model_version": "3"}}, "start.model_version needs start.zenml_model"),
    ({"preference": PREFS, "start": {"run": "r", "zenml_model": "m", "model_version": "1"}}, "not both"),
    ({"preference": PREFS, "training": {"packing": True}}, "parameters.training.packing"),
    ({"preference": PREFS, "training": {"num_processes": 2}}, "parameters.training.num_processes"),
    ({"preference": PREFS, "training": {"betta": 0.5}}, "parameters.training.betta: unknown key"),
    ({"data": {"sources": [{"name": "a", "path": "a.jsonl"}]}, "dpo": {"preference": PREFS, "start": {"run": "x"}}},
     "a chained run starts from its own SFT steps"),
])
def test_dpo_config_errors_are_one_line(parameters, message):
    with pytest.raises(ConfigError) as err:
        parse_parameters(parameters)
    assert message in str(err.value) and "\n" not in str(err.value)
