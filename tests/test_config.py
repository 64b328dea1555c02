import pytest
import yaml

from tests.helpers import ROOT
from twinsft.cli.config_file import load_run_config, parse_parameters, resolve_config_path
from twinsft.config import LLAMA_LINEAR_MODULES, RunConfig
from twinsft.errors import ConfigError

CONFIGS = ROOT / "configs"
MINIMAL = {"data": {"sources": [{"name": "a", "path": "a.jsonl"}]}}


def test_shipped_configs_validate():
    for name in ("lora.yaml", "qlora.yaml", "demo.yaml"):
        _, cfg = load_run_config(name, config_dir=CONFIGS)
        assert isinstance(cfg, RunConfig)


def test_lora_yaml_is_the_reference_recipe():
    _, cfg = load_run_config("lora.yaml", config_dir=CONFIGS)
    assert cfg.model.name == "meta-llama/Llama-3.1-8B" and cfg.model.max_seq_length == 2048
    assert not cfg.model.load_in_4bit
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (32, 32, 0.0)
    assert cfg.lora.target_modules == LLAMA_LINEAR_MODULES
    sources = {s.name: s for s in cfg.data.sources}
    assert sources["llmtwin"].hub_id == "mlabonne/llmtwin"
    assert sources["finetome"].hub_id == "mlabonne/FineTome-Alpaca-100k"
    assert sources["finetome"].split == "train[:10000]"
    assert (cfg.split.test_size, cfg.split.seed) == (0.05, 0)
    t = cfg.training
    assert (t.learning_rate, t.lr_scheduler_type, t.per_device_train_batch_size) == (3e-4, "linear", 2)
    assert (t.gradient_accumulation_steps, t.num_train_epochs, t.optim) == (8, 3, "adamw_8bit")
    assert (t.weight_decay, t.warmup_steps, t.packing, t.seed) == (0.01, 10, True, 0)
    assert t.precision == "auto" and t.report_to == ["comet_ml"]


def test_qlora_differs_from_lora_only_in_4bit_and_output():
    _, lora = load_run_config("lora.yaml", config_dir=CONFIGS)
    _, qlora = load_run_config("qlora.yaml", config_dir=CONFIGS)
    assert qlora.model.load_in_4bit
    assert qlora.model_copy(update={"model": lora.model, "export": lora.export}) == lora


def test_schema_defaults_match_the_recipe():
    cfg = RunConfig.model_validate(MINIMAL)
    assert cfg.lora.r == 32 and cfg.training.learning_rate == 3e-4 and cfg.model.max_seq_length == 2048


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"trainig": {}}, "parameters.trainig: unknown key"),
        ({"training": {"learning_rat": 1e-3}}, "parameters.training.learning_rat: unknown key"),
        ({"training": {"learning_rate": 0}}, "parameters.training.learning_rate: Input should be greater than 0"),
        ({"lora": {"r": 0}}, "parameters.lora.r: Input should be greater than 0"),
        ({"lora": {"r": "big"}}, "parameters.lora.r: Input should be a valid integer"),
        ({"split": {"test_size": 1.0}}, "parameters.split.test_size: Input should be less than 1"),
        ({"model": {"max_seq_length": 16}}, "parameters.model.max_seq_length: Input should be greater than or"),
        ({"export": {"push": True}}, "export.repo_id must name the Hub repo"),
        ({"export": {"repo_id": "no-slash"}}, "must look like 'user/name'"),
        ({"data": {"sources": []}}, "parameters.data.sources: List should have at least 1 item"),
        ({"data": {"sources": [{"name": "x"}]}}, "needs exactly one of hub_id, path or artifact"),
        ({"training": {"precision": "fp8"}}, "parameters.training.precision: Input should be"),
    ],
)
def test_bad_parameters_give_one_line_naming_the_field(patch, message):
    with pytest.raises(ConfigError) as err:
        parse_parameters({**MINIMAL, **patch}, source="x.yaml")
    text = str(err.value)
    assert message in text and "\n" not in text and text.startswith("x.yaml: ")


def test_bare_name_resolves_in_configs_dir(tmp_path):
    (tmp_path / "mine.yaml").write_text("parameters: {}")
    assert resolve_config_path("mine.yaml", tmp_path) == tmp_path / "mine.yaml"
    assert resolve_config_path("mine", tmp_path) == tmp_path / "mine.yaml"
    with pytest.raises(ConfigError, match=r"config file 'nope.yaml' not found; .*mine.yaml"):
        resolve_config_path("nope.yaml", tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("enable_cache: true\nparameters: {}\n", "remove the top-level 'enable_cache'"),
        ("steps: {}\n", "missing the 'parameters:' block"),
        ("parameters: [unclosed\n", "is not valid YAML"),
    ],
)
def test_bad_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_run_config(str(path))


def test_yaml_parameters_are_exactly_runconfig_sections():
    raw = yaml.safe_load((CONFIGS / "lora.yaml").read_text())
    assert set(raw["parameters"]) <= set(RunConfig.model_fields)


def test_dataloader_workers_is_auto_or_a_count():
    from pydantic import ValidationError

    from twinsft.config import TrainingSpec
    from twinsft.training.sft_config import dataloader_workers

    assert TrainingSpec().dataloader_workers == "auto"
    assert dataloader_workers(TrainingSpec(dataloader_workers=3)) == 3
    for wrong in (-1, "many"):
        with pytest.raises(ValidationError, match="dataloader_workers"):
            TrainingSpec(dataloader_workers=wrong)


def test_export_resolved_makes_local_folders_absolute_and_leaves_uris_alone(tmp_path, monkeypatch):
    from twinsft.config import ExportSpec

    monkeypatch.chdir(tmp_path)
    local = ExportSpec(output_dir="out/m", output_uri="copies/m").resolved()
    assert (local.output_dir, local.output_uri) == (str(tmp_path / "out/m"), str(tmp_path / "copies/m"))
    remote = ExportSpec(output_dir=None, output_uri="s3://bucket/models/twin").resolved()
    assert (remote.output_dir, remote.output_uri) == (None, "s3://bucket/models/twin")
