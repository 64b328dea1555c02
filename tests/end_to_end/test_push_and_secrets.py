"""The pipeline with push on, the Hub faked at its API: a failed push is retried alone, and no token leaks."""

from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.fake_hub import FakeHub
from tests.helpers import all_cached, statuses, tiny_parameters

pytestmark = pytest.mark.pipeline

HF_TOKEN = "hf_FAKEsecretTOKEN_5f3a9c"
COMET_KEY = "cometFAKEsecretKEY_77b1e2"


@pytest.fixture
def hub(monkeypatch):
    import huggingface_hub

    fake = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", fake.api)
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    monkeypatch.setenv("COMET_API_KEY", COMET_KEY)
    return fake


def run(tmp_path: Path, params: dict):
    from pipelines import sft_pipeline

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"parameters": params}))
    return sft_pipeline.with_options(config_path=str(config))()


def pushed_params(tmp_path, tiny_model_dir, data_files, **training) -> dict:
    params = tiny_parameters(tiny_model_dir, *data_files, tmp_path, **training)
    params["export"].update(push=True, repo_id="me/twin")
    return params


def test_failed_push_keeps_the_model_and_a_rerun_only_pushes(tmp_path, tiny_model_dir, data_files, hub):
    from twinsft.export import PushError

    params = pushed_params(tmp_path, tiny_model_dir, data_files)
    hub.fail_upload = True
    with pytest.raises(PushError, match="rerun the same command to retry"):
        run(tmp_path, params)
    merged = tmp_path / "merged"
    assert (merged / "model.safetensors").is_file() and (merged / "README.md").is_file()

    hub.fail_upload = False
    again = run(tmp_path, params)
    assert statuses(again) == {**all_cached(), "push_merged": "completed"}
    (commit,) = hub.commits
    assert again.name in commit["message"] and hub.repos["me/twin"]["private"] is True
    result = again.steps["push_merged"].outputs["export_result"][0]
    assert result.load().pushed and result.run_metadata["verified_tokens"] > 0

    card = hub.repos["me/twin"]["files"]["README.md"].decode()
    report = again.steps["train_sft"].outputs["train_report"][0].load()
    assert f"base_model: {tiny_model_dir}" in card and again.name in card
    assert report.train_rows_sha256 in card and len(report.train_rows_sha256) == 64 and "twin.jsonl" in card
    assert report.train_rows_sha256 in card and report.eval_rows_sha256 in card
    assert f"{report.eval_loss_before:.4f}" in card and f"{report.eval_loss_after:.4f}" in card
    assert "`lora.r` | 4" in card and "`training.learning_rate` | 0.005" in card


def files_under(*roots: Path):
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                yield path


def contents(path: Path) -> list[bytes]:
    """The file's bytes, plus the members of gzip and zip files (logs and archives may be compressed)."""
    data = path.read_bytes()
    out = [data]
    if data[:2] == b"\x1f\x8b":
        out.append(gzip.decompress(data))
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            out += [zf.read(name) for name in zf.namelist()]
    return out


def test_tokens_never_reach_the_store_artifacts_logs_or_outputs(tmp_path, tiny_model_dir, data_files, hub, capfd):
    from zenml.client import Client

    # A seed of its own: another adapter than other tests train, so smoke_generate runs too (it is keyed by the
    # adapter's content).
    params = pushed_params(tmp_path, tiny_model_dir, data_files, save_steps=1, keep_checkpoints=True, seed=7)
    done = run(tmp_path, params)
    assert {statuses(done)[s] for s in ("train_sft", "smoke_generate", "push_merged")} == {"completed"}
    assert hub.tokens == [HF_TOKEN]  # the token did reach the Hub boundary, and only there

    zenml_root = Path(os.environ["ZENML_CONFIG_PATH"])  # SQLite store, artifact store, step logs
    adapter = Path(done.steps["train_sft"].outputs["lora_adapter"][0].load())
    checkpoints = Path(params["training"]["checkpoint_dir"])
    assert any(checkpoints.rglob("training_args.bin"))  # kept checkpoints are searched too
    roots = [zenml_root, tmp_path, adapter]
    scanned = 0
    for path in files_under(*roots):
        for blob in contents(path):
            assert HF_TOKEN.encode() not in blob and COMET_KEY.encode() not in blob, path
        scanned += 1
    assert scanned > 20 and any(p.suffix == ".db" for p in files_under(zenml_root))

    client = Client()
    for step in done.steps.values():
        assert HF_TOKEN not in str(step.config.model_dump()) and HF_TOKEN not in str(step.run_metadata)
    assert HF_TOKEN not in str(client.get_pipeline_run(done.id).config.model_dump())
    captured = capfd.readouterr()
    assert HF_TOKEN not in captured.out + captured.err and COMET_KEY not in captured.out + captured.err
