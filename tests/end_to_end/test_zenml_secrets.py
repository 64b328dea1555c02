"""HF_TOKEN and COMET_API_KEY from ZenML secrets: a stack overlay's run-level `secrets:` puts them on every step
of the compiled run (ZenML sets each secret's keys as environment variables in the step's process), the
token a step reads comes from there, and no value lands in the store, the artifact store or the outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.end_to_end.test_push_and_secrets import HF_TOKEN, contents, files_under, pushed_params
from tests.fake_hub import FakeHub
from tests.helpers import ROOT, STEPS, statuses
from twinsft.cli.config_file import load_run

pytestmark = pytest.mark.pipeline

COMET_KEY = "cometFAKEzenmlSECRET_4d0c9a"


@pytest.fixture
def zenml_secrets():
    from zenml.client import Client

    client = Client()
    made = {"hf": {"HF_TOKEN": HF_TOKEN}, "comet": {"COMET_API_KEY": COMET_KEY}}
    ids = {name: client.create_secret(name, values=values).id for name, values in made.items()}
    yield ids
    for name in made:
        client.delete_secret(name)


OVERLAYS = sorted(p.stem for p in (ROOT / "configs" / "stacks").glob("*.yaml"))


@pytest.mark.parametrize("stack", OVERLAYS)
def test_every_overlay_names_both_secrets_for_the_whole_run(stack):
    """Run-level `secrets`, which ZenML gives every step: also in the step-operator overlays, whose compiled run
    needs a stack with a step operator (the compile test below covers the orchestrator overlays)."""
    import yaml

    overlay = yaml.safe_load((ROOT / "configs" / "stacks" / f"{stack}.yaml").read_text())
    assert overlay["secrets"] == ["hf", "comet"]
    assert not any("secrets" in (step or {}) for step in overlay.get("steps", {}).values())


@pytest.mark.parametrize("stack", [name for name in OVERLAYS if not name.endswith("-step-operator")])
def test_the_overlay_puts_both_secrets_on_every_step_of_the_compiled_run(zenml_secrets, stack):
    from pipelines import sft_pipeline

    run = load_run("lora.yaml", config_dir=ROOT / "configs", stack=stack)
    pipeline = sft_pipeline.with_options(config_path=str(run.path))
    pipeline.prepare()
    snapshot, _, _ = pipeline._compile(config_path=str(run.path))  # what run.py would submit, not run
    assert set(snapshot.step_configurations) == set(STEPS)
    for name, step in snapshot.step_configurations.items():
        assert set(zenml_secrets.values()) <= set(step.config.secrets), name  # secret ids, never values
    dumped = snapshot.model_dump_json()
    assert HF_TOKEN not in dumped and COMET_KEY not in dumped


def test_a_step_reads_the_token_from_the_secret_and_nothing_stores_it(tmp_path, tiny_model_dir, data_files,
                                                                      zenml_secrets, monkeypatch, capfd):
    import huggingface_hub
    from zenml.client import Client

    from pipelines import sft_pipeline

    hub = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", hub.api)
    monkeypatch.delenv("HF_TOKEN", raising=False)  # only the ZenML secret has it
    monkeypatch.delenv("COMET_API_KEY", raising=False)
    params = pushed_params(tmp_path, tiny_model_dir, data_files)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"parameters": params, "secrets": ["hf", "comet"]}))
    done = sft_pipeline.with_options(config_path=str(config))()
    assert statuses(done) == dict.fromkeys(STEPS, "completed")
    assert hub.tokens == [HF_TOKEN]  # push_merged got HF_TOKEN from the secret, and pushed with it

    zenml_root = Path(os.environ["ZENML_CONFIG_PATH"])  # SQLite store, artifact store, step logs
    scanned = 0
    for path in files_under(zenml_root, tmp_path):
        for blob in contents(path):
            assert HF_TOKEN.encode() not in blob and COMET_KEY.encode() not in blob, path
        scanned += 1
    assert scanned > 20
    client = Client()
    for step in done.steps.values():
        assert HF_TOKEN not in str(step.config.model_dump()) and HF_TOKEN not in str(step.run_metadata)
        assert COMET_KEY not in str(step.run_metadata)
    assert HF_TOKEN not in str(client.get_pipeline_run(done.id).config.model_dump())
    captured = capfd.readouterr()
    assert HF_TOKEN not in captured.out + captured.err and COMET_KEY not in captured.out + captured.err
