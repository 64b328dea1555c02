"""A workload manager for a self-hosted open-source ZenML server: runs each snapshot run's runner as a process.

ZenML's server runs a snapshot (the dashboard's "Run" button, `POST /api/v1/pipeline_snapshots/{id}/runs`) by
handing a "runner" (ZenML's own entrypoint, which submits the snapshot to the stack's orchestrator) to the workload
manager named by `ZENML_SERVER_WORKLOAD_MANAGER_IMPLEMENTATION_SOURCE`. The open-source wheel ships one,
`InMemoryWorkloadManager`, with four limits this one removes:
- its runner cannot import the pipeline's code (ZenML's runner entrypoint downloads none, and the server's path
  does not hold it), so ZenML cannot resolve a single cached step in the runner ("failed preparing step run",
  logged at debug level) and starts a container for every step, each finding its own cache hit there (about 20 s
  a step on 2 cores); this one's runner first downloads the snapshot's code from the artifact store, as a step's
  container does, into a folder of its own, so cached steps get no container;
- it kills the runner after `ZENML_RUNNER_POD_TIMEOUT` (180 s by default) when it waits for it; a runner on a
  synchronous orchestrator lives as long as the run (here: no limit unless TWINSFT_RUNNER_TIMEOUT is set);
- it hands the runner only the ZENML_* variables the server made (no PATH, HOME, locale, proxy or CA bundle),
  so the runner falls back to the server user's default ZenML config folder (here: those basics of the server's
  own environment, never its store or secrets, and a ZenML config folder of its own for each run);
- it keeps no logs, so the dashboard's runner logs are empty (here: one log file per workload, returned by
  `get_logs`).

Select it with
`ZENML_SERVER_WORKLOAD_MANAGER_IMPLEMENTATION_SOURCE=twinsft.server.workload_manager.ProcessWorkloadManager`
(the server's Python must import `twinsft`). Like the in-memory manager it builds no image: the runner runs in
the server's own environment, which must hold the stack's integrations (e.g. s3fs, paramiko).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional
from uuid import UUID

from zenml.logger import get_logger
from zenml.zen_server.pipeline_execution.workload_manager_interface import (
    WorkloadManagerInterface,
    WorkloadType,
)

logger = get_logger(__name__)

# What a runner needs of the server's environment besides the ZENML_* variables the server makes for it:
# where programs and certificates are, the locale, proxies. Not the server's own ZenML store or secrets.
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "SSL_CERT_FILE",
                  "REQUESTS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                  "no_proxy", "ZENML_ANALYTICS_OPT_IN", "ZENML_LOGGING_VERBOSITY")
# The runner: ZenML's own runner entrypoint, after the snapshot's code is downloaded into the working folder and put
# on the path (what a step's container does, and ZenML's runner does not). Plain ZenML: nothing of the server's.
RUNNER = """
import sys
from zenml.entrypoints.base_entrypoint_configuration import ENTRYPOINT_CONFIG_SOURCE_OPTION
from zenml.execution.pipeline.utils import prevent_pipeline_execution
from zenml.utils import code_utils, source_utils

args = sys.argv[1:]
flag = args.index("--" + ENTRYPOINT_CONFIG_SOURCE_OPTION)
config_class = source_utils.load(args[flag + 1])
config = config_class(arguments=args[:flag] + args[flag + 2:])
if config.should_download_code and config.snapshot.code_path:
    code_utils.download_code_from_artifact_store(code_path=config.snapshot.code_path,
                                                 artifact_store=config._load_active_artifact_store())
with prevent_pipeline_execution():
    config.run()
"""
TIMEOUT_VAR = "TWINSFT_RUNNER_TIMEOUT"  # seconds; unset or 0: the runner may run as long as its run
LOG_DIR_VAR = "TWINSFT_RUNNER_LOG_DIR"  # where the runners' logs go (default: a folder under the temp dir)


def runner_environment(environment: Optional[Dict[str, str]], base: Dict[str, str], config_dir: Path) -> dict:
    """The runner's environment: the basics of `base` (the server's), then what the server made for this run, and a
    ZenML config folder of its own (a runner must not read or write the server user's default one)."""
    env = {name: base[name] for name in PASSED_THROUGH if name in base}
    env.update(environment or {})
    env["ZENML_CONFIG_PATH"] = str(config_dir)
    return env


class ProcessWorkloadManager(WorkloadManagerInterface):
    """Runs each runner as a process of the server's Python, with a sane environment and a log file."""

    def __init__(self) -> None:
        self.log_dir = Path(os.environ.get(LOG_DIR_VAR) or Path(tempfile.gettempdir()) / "twinsft-runners")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._processes: Dict[UUID, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def _log_path(self, workload_id: UUID) -> Path:
        return self.log_dir / f"{workload_id}.log"

    def log(self, workload_id: UUID, message: str) -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._log_path(workload_id).open("a") as out:
            out.write(f"[{stamp}] {message}\n")

    def get_logs(self, workload_id: UUID) -> str:
        path = self._log_path(workload_id)
        return path.read_text(errors="replace") if path.exists() else ""

    def build_and_push_image(self, workload_id: UUID, workload_type: WorkloadType, dockerfile: str, image_name: str,
                             sync: bool = True, timeout_in_seconds: int = 0) -> str:
        return ""  # the runner runs in the server's environment: no image

    def run(self, workload_id: UUID, image: str, command: List[str], arguments: List[str],
            environment: Optional[Dict[str, str]] = None, sync: bool = True, timeout_in_seconds: int = 0) -> None:
        config_dir = Path(tempfile.mkdtemp(prefix=f"twinsft-runner-{workload_id}-"))
        env = runner_environment(environment, dict(os.environ), config_dir)
        # command is ZenML's `python -m zenml.entrypoints.entrypoint`; the arguments name the runner's class.
        # A script file, not `-c`: ZenML finds its source root from the main module's file.
        (config_dir / "runner.py").write_text(RUNNER)
        argv = [sys.executable, str(config_dir / "runner.py"), *arguments]
        timeout = int(os.environ.get(TIMEOUT_VAR) or 0) or None  # ZenML's 180 s default is for pods, not this
        self.log(workload_id, f"starting runner: {' '.join(argv)}")
        with self._log_path(workload_id).open("ab") as log:
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=config_dir)
        with self._lock:
            self._processes[workload_id] = proc

        def wait() -> int:
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
                self.log(workload_id, f"runner killed after {TIMEOUT_VAR}={timeout} s")
            self.log(workload_id, f"runner exited with status {code}")
            shutil.rmtree(config_dir, ignore_errors=True)  # its ZenML config and the downloaded code
            with self._lock:
                self._processes.pop(workload_id, None)
            return code

        if not sync:
            threading.Thread(target=wait, name=f"runner-{workload_id}", daemon=True).start()
            return
        if (code := wait()) != 0:
            raise RuntimeError(f"Workload {workload_id} failed with exit code {code}; its log: "
                               f"{self._log_path(workload_id)}")

    def delete_workload(self, workload_id: UUID) -> None:
        with self._lock:
            proc = self._processes.pop(workload_id, None)
        if proc is not None and proc.poll() is None:
            proc.kill()
