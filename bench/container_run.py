"""The demo-shaped test pipeline with every step in its own container (`local_docker`) vs in-process.

    python -m bench.container_run [--skip-cold-build] [--out bench/results/<date>-cpu-<host>-containers.json]

Needs a Docker daemon and root (docker/build-base.sh uses mmdebstrap). The pipeline is the one of
`pytest -m docker` (tests/docker/harness.py): the tiny random Llama, the six steps, 2 training steps,
checkpoints and the merged model in the artifact store. Measured, in this order, in one process:

- base image: docker/build-base.sh (Debian packages + this machine's pip set-up), skipped where it exists;
- image build, cold: `docker build --no-cache` of docker/Dockerfile.cpu (pip installs the pinned set);
- in-process: run.py on the default stack (local orchestrator) in a fresh project copy and store; the first
  run, then `--no-cache` (every step runs again, imports and files warm);
- containers: run.py on a local_docker stack in another fresh copy and store; the first run (ZenML builds its
  image, every layer in Docker's cache), then `--no-cache` (the image reused: the container run itself),
  then a plain rerun (fully cached).

"x in-process" compares each container run with the in-process run of the same kind. Wall times of run.py,
client start-up included; the machine's other load is not controlled, so compare only within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import docker

from tests.docker.harness import (
    BASE_IMAGE,
    build_base_image,
    docker_daemon_error,
    make_project,
    register_docker_stack,
    run_pipeline,
    step_containers,
    write_config,
    zenml_env,
)
from tests.helpers import GENERAL_ROWS, ROOT, STEPS, TWIN_ROWS, save_tiny_llama, write_jsonl


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def cold_image_build() -> float:
    command = ["docker", "build", "--no-cache", "-q", "-f", "docker/Dockerfile.cpu", "--build-arg",
               f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", "TORCH_INDEX_URL=", "-t", "twinsft-cpu:bench-cold", "."]
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def pipeline_runs(work: Path, inputs: Path, containers: bool) -> dict[str, float]:
    project = make_project(work / ("containers" if containers else "in-process") / "project")
    config = write_config(project, inputs, inputs / "model", inputs / "twin.jsonl", inputs / "general.jsonl")
    env = zenml_env(project)
    if containers:
        register_docker_stack(project, env)
        client = docker.from_env()
        before = {c.id for c in client.containers.list(all=True)}
    times = {}
    for name, extra, expected in [("first run", (), "completed"), ("rerun --no-cache", ("--no-cache",), "completed"),
                                  ("rerun, fully cached", (), "cached")]:
        statuses, seconds = run_pipeline(project, env, config, *extra)
        assert statuses == dict.fromkeys(STEPS, expected), (name, statuses)
        times[name] = seconds
        print(f"{'containers' if containers else 'in-process'}: {name}: {seconds:.1f} s", flush=True)
    if containers:  # local_docker leaves each step's exited container behind
        for container in (c for started in step_containers(client, before).values() for c in started):
            container.remove(force=True)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--skip-cold-build", action="store_true", help="skip the `docker build --no-cache`")
    args = parser.parse_args(argv)
    error = docker_daemon_error()
    if error:
        print(f"error: {error}; start dockerd", file=sys.stderr)
        return 2
    os.environ.setdefault("TWINSFT_CACHE", tempfile.mkdtemp(prefix="twinsft-cache-"))
    results: dict[str, float | None] = {}
    exists = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode == 0
    results["base image build (s)"] = None if exists else timed(build_base_image)  # build-base.sh skips an existing one
    results["image build, cold (s)"] = None if args.skip_cold_build else cold_image_build()
    print(f"image build, cold: {results['image build, cold (s)']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="twinsft-containers-") as tmp:
        work = Path(tmp)
        inputs = work / "inputs"
        save_tiny_llama(inputs / "model")
        write_jsonl(inputs / "twin.jsonl", TWIN_ROWS)
        write_jsonl(inputs / "general.jsonl", GENERAL_ROWS)
        local = pipeline_runs(work, inputs, containers=False)
        docker = pipeline_runs(work, inputs, containers=True)
    rows = [(name, local[name], docker[name]) for name in local]
    print(f"\n{'':24} {'in-process':>11} {'containers':>11} {'x in-process':>13}")
    for name, a, b in rows:
        print(f"{name:24} {a:10.1f}s {b:10.1f}s {b / a:12.2f}x")
    for name in ("base image build (s)", "image build, cold (s)"):
        if results[name] is not None:
            print(f"{name:24} {results[name]:10.1f}s")
    if args.out:
        record = {"date": date.today().isoformat(), "machine": f"{platform.node()} ({os.cpu_count()} CPUs)",
                  "docker": subprocess.run(["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True,
                                           text=True).stdout.strip(),
                  "builds": results, "in_process_s": local, "containers_s": docker,
                  "ratio": {name: b / a for name, a, b in rows}}
        out = Path(args.out)  # each invocation is appended as one run
        runs = json.loads(out.read_text())["runs"] if out.exists() else []
        out.write_text(json.dumps({"runs": [*runs, record]}, indent=1) + "\n")
        print(f"appended to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
