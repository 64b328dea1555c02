"""Same weights in every step: a Hub model's revision is pinned to one commit when the run is submitted.

The tiny Llama sits in a private Hugging Face cache under a Hub id, as `snapshot_download` would leave it; the
Hub is faked only at its network boundary (`HfApi.model_info`). The steps load the model by that id and the
pinned commit, from the cache, as a pod would load it from the Hub.
"""

import shutil
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import constants as hub_constants

from tests.end_to_end.test_pipeline import run_pipeline
from tests.helpers import STEPS, statuses, tiny_parameters
from tests.pinning.test_pinning import cache_snapshot

pytestmark = pytest.mark.pipeline

REPO = "twinsft-test/pinned-tiny"
A, B = "1" * 40, "2" * 40
# The step parameter that carries the model into each step (split takes none).
MODEL_PARAMETER = {"load_datasets": "tokenizer_source", "format_alpaca": "tokenizer_source", "train_sft": "model",
                   "smoke_generate": "model", "push_merged": "model"}


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, tiny_model_dir):
    cache = tmp_path / "hf-hub"
    files = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir() if p.is_file()}
    cache_snapshot(cache, REPO, A, files)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # the steps' loaders never touch the network
    return cache, files


def test_every_step_gets_the_commit_pinned_at_submit_and_a_new_commit_reruns(tmp_path, monkeypatch, hub_cache,
                                                                           data_files):
    cache, files = hub_cache
    asked = []

    def model_info(self, repo_id, revision=None, **_):
        asked.append((repo_id, revision))
        return type("Info", (), {"sha": A})()

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the client reaches the (fake) Hub
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    params = tiny_parameters(Path(REPO), *data_files, tmp_path)
    params["model"]["name"] = REPO

    first = run_pipeline(tmp_path, params)
    ran = statuses(first)
    # split reads no model: when an earlier test in the session split the same rows, it is rightly cached.
    assert ran.pop("split") in ("completed", "cached")
    assert ran == {step: "completed" for step in STEPS if step != "split"}
    assert asked == [(REPO, None)]  # once, on the client, for the whole run
    for step, parameter in MODEL_PARAMETER.items():
        assert first.steps[step].config.parameters[parameter]["revision"] == A, step
    assert first.steps["train_sft"].outputs["train_report"][0].run_metadata["model_revision"] == A
    assert first.steps["smoke_generate"].outputs["smoke_generation"][0].run_metadata["model_revision"] == A
    assert first.steps["format_alpaca"].outputs["sft_dataset"][0].run_metadata["model_revision"] == A
    merged = first.steps["push_merged"].outputs["merged_model"][0]
    assert merged.run_metadata["model_revision"] == A
    card = (Path(merged.load()) / "README.md").read_text()
    assert f"**{REPO} at revision `{A}`**" in card and f"| `model.revision` | {A} |" in card

    # Upstream moves `main` to a new commit; this client is offline now, so the cache's refs/main answers.
    shutil.rmtree(cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / A)
    cache_snapshot(cache, REPO, B, files)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    second = run_pipeline(tmp_path, params)
    assert asked == [(REPO, None)]  # offline: no Hub call
    for step, parameter in MODEL_PARAMETER.items():
        assert second.steps[step].config.parameters[parameter]["revision"] == B, step
    # Same files under a new commit: the steps that take the model rerun (their parameters changed), and the
    # model loads from the new snapshot (the old one is gone).
    assert {s: second.steps[s].status.value for s in ("load_datasets", "format_alpaca", "train_sft",
                                                      "push_merged")} == dict.fromkeys(
        ("load_datasets", "format_alpaca", "train_sft", "push_merged"), "completed")


def test_a_revision_the_hub_does_not_have_is_one_line_before_any_step(tmp_path, data_files):
    """run.py with a revision the (fake) Hub says it does not have: exit 2, one line naming the field, no run."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT, write_config

    params = tiny_parameters(Path(REPO), *data_files, tmp_path)
    params["model"].update(name=REPO, revision="v9", max_seq_length=256)  # preflight counts bytes: no tokenizer here
    config = write_config(tmp_path / "v9.yaml", params)
    prelude = (
        "import httpx, huggingface_hub; from huggingface_hub.errors import RevisionNotFoundError\n"
        "def model_info(self, repo_id, revision=None, **_):\n"
        "    raise RevisionNotFoundError('404', response=httpx.Response(404, request=httpx.Request('GET', 'https://x')))\n"
        "huggingface_hub.HfApi.model_info = model_info\n"
    )
    probe = "import sys; exec(sys.argv[1]); import run; sys.exit(run.main(sys.argv[2:]))"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    proc = subprocess.run([sys.executable, "-c", probe, prelude, "--config", str(config)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        f"error: model.revision: revision 'v9' of model '{REPO}' is not on the Hub; name a branch, tag or commit "
        "it has"]
