"""The project's workload manager without a server: the runner's environment, its log, its exit status, and the
working folder it leaves behind (none). The manager inside a running server: test_server_reruns.py."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from twinsft.server import workload_manager
from twinsft.server.workload_manager import ProcessWorkloadManager, runner_environment


def test_the_runner_gets_the_basics_and_the_servers_variables_not_its_store(tmp_path):
    server = {"PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "ZENML_STORE_URL": "sqlite:///server.db",
              "AWS_SECRET_ACCESS_KEY": "x", "ZENML_SERVER_SERVER_URL": "http://127.0.0.1:8237"}
    env = runner_environment({"ZENML_STORE_URL": "http://127.0.0.1:8237", "ZENML_STORE_API_TOKEN": "t"}, server,
                             tmp_path)
    assert env == {"PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "ZENML_STORE_URL": "http://127.0.0.1:8237",
                   "ZENML_STORE_API_TOKEN": "t", "ZENML_CONFIG_PATH": str(tmp_path)}


def test_a_runner_runs_logs_and_leaves_no_working_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(workload_manager.LOG_DIR_VAR, str(tmp_path / "logs"))
    monkeypatch.setattr(workload_manager, "RUNNER", "import os, sys\nprint('cwd', os.getcwd())\n"
                        "print('config', os.environ['ZENML_CONFIG_PATH'], sys.argv[1:])\nsys.exit(int(sys.argv[1]))\n")
    manager = ProcessWorkloadManager()
    ok, failing = uuid.uuid4(), uuid.uuid4()
    manager.run(ok, "", ["python", "-m", "zenml.entrypoints.entrypoint"], ["0"], {"ZENML_X": "1"}, sync=True)
    log = manager.get_logs(ok)
    folder = log.split("cwd ")[1].split()[0]
    assert f"config {folder} ['0']" in log and "runner exited with status 0" in log
    assert not Path(folder).exists()
    with pytest.raises(RuntimeError, match=f"Workload {failing} failed with exit code 3"):
        manager.run(failing, "", ["python"], ["3"], {}, sync=True)
    assert {f"{ok}.log", f"{failing}.log"} == set(os.listdir(tmp_path / "logs"))  # one log per workload
