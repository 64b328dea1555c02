"""Read a run configuration (one file, or several merged in order) and validate its `parameters:` block
against `RunConfig`."""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from twinsft.config import DpoRunConfig, RunConfig, UnknownKeyError, config_schema
from twinsft.errors import ConfigError

CONFIG_DIR = Path("configs")
STACKS = "stacks"  # configs/stacks/<name>.yaml: the overlays `run.py --stack <name>` adds


def resolve_config_path(arg: str, config_dir: Path = CONFIG_DIR) -> Path:
    """`configs/lora.yaml`, an absolute path, or a bare `lora.yaml` / `lora` found in `configs/`."""
    path = Path(arg).expanduser()
    if path.is_file():
        return path
    if not path.parent.parts or path.parent == Path("."):
        for candidate in (config_dir / path.name, config_dir / f"{path.name}.yaml"):
            if candidate.is_file():
                return candidate
    available = ", ".join(sorted(p.name for p in config_dir.glob("*.yaml"))) or "none"
    raise ConfigError(f"config file '{arg}' not found; pass a path or one of configs/: {available}")


def read_yaml_file(path: Path) -> dict[str, Any]:
    """One YAML file of a run configuration: a mapping, without a run-level `enable_cache`."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'parameters:' block")
    if "enable_cache" in raw:
        # A run-level enable_cache overrides every step and beats --no-cache (ZenML 0.98).
        raise ConfigError(
            f"{path}: remove the top-level 'enable_cache'; use `run.py --no-cache` or steps.<step>.enable_cache"
        )
    return raw


def check_run_document(raw: dict[str, Any], label: str) -> dict[str, Any]:
    """What a whole run configuration (one file or a merge) needs beyond ZenML's own checks."""
    registry = raw.get("model")  # ZenML's own key: the ZenML Model each run becomes a version of
    if registry is not None and not (isinstance(registry, dict) and str(registry.get("name") or "").strip()):
        raise ConfigError(
            f"{label}: the top-level 'model:' (the ZenML Model this run versions) needs a 'name'; "
            "the base model to fine-tune goes in parameters.model"
        )
    if "parameters" not in raw:
        raise ConfigError(f"{label}: missing the 'parameters:' block that holds model, lora, data, training, ...")
    return raw


def read_run_file(path: Path) -> dict[str, Any]:
    return check_run_document(read_yaml_file(path), str(path))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`: mappings merge key by key, anything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_stack_path(name: str, config_dir: Path = CONFIG_DIR) -> Path:
    """`--stack kubernetes`: configs/stacks/kubernetes.yaml (a path to a YAML file also works)."""
    path = Path(name).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    candidate = config_dir / STACKS / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    available = ", ".join(sorted(p.stem for p in (config_dir / STACKS).glob("*.yaml"))) or "none"
    raise ConfigError(f"--stack '{name}': no {candidate}; use one of: {available}")


def merged_run_file(paths: Sequence[Path]) -> Path:
    """The one file ZenML reads: the given file, or the files merged in order into a temporary file."""
    if len(paths) == 1:
        return paths[0]
    merged: dict[str, Any] = {}
    for path in paths:
        merged = deep_merge(merged, read_yaml_file(path))
    check_run_document(merged, " + ".join(str(p) for p in paths))
    handle, name = tempfile.mkstemp(prefix="twinsft-run-", suffix=".yaml")
    with os.fdopen(handle, "w") as out:
        out.write(f"# merged by run.py from {', '.join(str(p) for p in paths)}\n")
        yaml.safe_dump(merged, out, sort_keys=False)
    atexit.register(lambda: Path(name).unlink(missing_ok=True))
    return Path(name)


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"parameters.{loc}: unknown key; remove it or check its spelling"
    if error["type"] == "missing":
        return f"parameters.{loc}: required, add it"
    got = error.get("input")
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    return f"parameters.{loc}: {msg}{shown}"


def parse_parameters(parameters: Any, source: str = "parameters") -> RunConfig | DpoRunConfig:
    """The validated block: a RunConfig, or a DpoRunConfig / TwinRunConfig by its sections (config_schema)."""
    try:
        return config_schema(parameters).model_validate(parameters)
    except UnknownKeyError as exc:  # a section's misspelt key, raised by the section itself
        raise ConfigError(f"{source}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (+{more} more)" if more else ""
        raise ConfigError(f"{source}: {_describe(first)}{suffix}") from None


def zenml_secrets(raw: dict[str, Any], step: str) -> list[str]:
    """ZenML secrets the run configuration exports into `step`'s environment (run-wide and per step)."""
    step_conf = (raw.get("steps") or {}).get(step) or {}
    return [str(s) for s in (raw.get("secrets") or []) + (step_conf.get("secrets") or [])]


@dataclass(frozen=True)
class RunFile:
    """A run configuration as `run.py` uses it."""

    path: Path  # the file ZenML reads: the one given, or the merge of several
    raw: dict[str, Any]  # its contents
    label: str  # how errors name it: the file, or the files merged ("a.yaml + stacks/b.yaml")
    config: RunConfig | DpoRunConfig  # its validated `parameters:` (a DPO or chained run: twinsft.config)


def load_run(arg: str | Sequence[str], config_dir: Path = CONFIG_DIR, stack: str | None = None) -> RunFile:
    """Resolve, read, merge and validate a run configuration. Raises ConfigError with one line.

    `arg` is one file or several (merged in order: later files override earlier ones key by key, lists
    are replaced); `stack` adds `configs/stacks/<stack>.yaml` last.
    """
    names = [arg] if isinstance(arg, str) else list(arg)
    paths = [resolve_config_path(name, config_dir) for name in names]
    if stack:
        paths.append(resolve_stack_path(stack, config_dir))
    path = merged_run_file(paths)
    label = " + ".join(str(p) for p in paths)
    raw = read_run_file(path) if len(paths) == 1 else read_yaml_file(path)
    return RunFile(path, raw, label, parse_parameters(raw["parameters"], source=label))


def load_run_config(
    arg: str | Sequence[str], config_dir: Path = CONFIG_DIR, stack: str | None = None
) -> tuple[Path, RunConfig]:
    """The file ZenML reads and the validated parameters (see `load_run`)."""
    run = load_run(arg, config_dir, stack)
    return run.path, run.config
