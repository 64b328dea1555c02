"""`run.py serve`: which ZenML Model and example request a config names; bad input is one line and exit 2 before
anything is deployed or loaded (the deployment itself: tests/end_to_end/test_serving.py, -m deployment)."""

import pytest
import yaml

from twinsft.cli.main import run_command
from twinsft.cli.serve import deployment_name, parse_serve_args, served_model_name


def test_the_config_names_the_model_and_the_example(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "twin demo"}, "parameters": {
        "generation": {"instruction": "Say hi.", "max_new_tokens": 12}}}))
    assert served_model_name(parse_serve_args(["--config", str(config)]), tmp_path) == (
        "twin demo", {"instruction": "Say hi.", "max_new_tokens": 12})
    assert served_model_name(parse_serve_args(["--config", str(config), "--model", "other"]), tmp_path)[0] == "other"
    assert deployment_name("twin demo") == "twin-demo-serve"


def test_without_a_config_the_default_model_and_smoke_instruction(tmp_path):
    model, example = served_model_name(parse_serve_args([]), tmp_path)
    assert model == "twinsft"
    assert example == {"instruction": "Write a paragraph to introduce supervised fine-tuning.", "max_new_tokens": 256}


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "never-trained"], "error: ZenML Model 'never-trained' has no versions; train one first"),
    (["--model", "never-trained", "--stage", "production"],
     "error: ZenML Model 'never-trained' has no version in stage 'production'"),
    (["--model", "never-trained", "--stop"], "error: no deployment named 'never-trained-serve'"),
    (["--max-new-tokens-cap", "0"], "error: --max-new-tokens-cap must be at least 1, got 0"),
    (["--config", "no-such.yaml"], "error: config file 'no-such.yaml' not found"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    assert run_command(["serve", *args], config_dir=tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err


def test_the_configs_image_and_resources_go_to_a_containerized_deployer(tmp_path):
    from twinsft.cli.serve import passed_settings

    config = tmp_path / "c.yaml"
    settings = {"docker": {"dockerfile": "docker/Dockerfile.cpu"}, "resources": {"gpu_count": 1},
                "orchestrator": {"synchronous": False}}
    config.write_text(yaml.safe_dump({"parameters": {}, "settings": settings}))
    assert passed_settings(parse_serve_args(["--config", str(config)]), tmp_path) == {
        "docker": settings["docker"], "resources": {"gpu_count": 1}}
    assert passed_settings(parse_serve_args([]), tmp_path) == {}
