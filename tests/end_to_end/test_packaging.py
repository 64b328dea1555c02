"""twinsft installs as a wheel next to a project that has its own top-level `steps` and `pipelines` packages."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.pipeline  # the wheel built and imported end to end

PROBE = """
import steps, pipelines, twinsft
from twinsft.pipelines import sft_pipeline, sft_steps
from twinsft.steps import load_datasets
print(steps.OWNER, pipelines.OWNER, twinsft.__file__, sft_pipeline.name, load_datasets.resolve().module)
"""


def pip(*args: str, cwd: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args, "--no-deps", "--no-index"]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_wheel_imports_beside_a_project_with_its_own_steps_and_pipelines(tmp_path):
    src = tmp_path / "src"  # a copy, so building leaves no build/ or egg-info in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src)
    shutil.copytree(ROOT / "twinsft", src / "twinsft", ignore=shutil.ignore_patterns("__pycache__"))
    pip("wheel", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src), cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("twinsft-*.whl"))
    site = tmp_path / "site"
    pip("install", "--target", str(site), str(wheel), cwd=tmp_path)
    assert (site / "twinsft" / "steps" / "load_datasets.py").is_file()
    assert (site / "twinsft" / "sample_data" / "twin.jsonl").is_file()
    assert not (site / "steps").exists() and not (site / "pipelines").exists()

    project = tmp_path / "project"  # e.g. the LLM Twin repository
    for package in ("steps", "pipelines"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text(f"OWNER = 'project-{package}'\n")
    (project / "probe.py").write_text(PROBE)  # ZenML resolves sources against the main module's folder
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "ZENML_ANALYTICS_OPT_IN": "false",
           "ZENML_CONFIG_PATH": str(tmp_path / "zenml"), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "probe.py"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    owner_steps, owner_pipelines, twinsft_file, name, module = proc.stdout.split()[-5:]
    assert (owner_steps, owner_pipelines) == ("project-steps", "project-pipelines")
    assert twinsft_file.startswith(str(site)) and name == "llm_sft" and module == "twinsft.steps.load_datasets"
