"""Read a run configuration file and validate its `parameters:` block against `RunConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from twinsft.config import RunConfig
from twinsft.errors import ConfigError

CONFIG_DIR = Path("configs")


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


def read_run_file(path: Path) -> dict[str, Any]:
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
    registry = raw.get("model")  # ZenML's own key: the ZenML Model each run becomes a version of
    if registry is not None and not (isinstance(registry, dict) and str(registry.get("name") or "").strip()):
        raise ConfigError(
            f"{path}: the top-level 'model:' (the ZenML Model this run versions) needs a 'name'; "
            "the base model to fine-tune goes in parameters.model"
        )
    if "parameters" not in raw:
        raise ConfigError(f"{path}: missing the 'parameters:' block that holds model, lora, data, training, ...")
    return raw


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


def parse_parameters(parameters: Any, source: str = "parameters") -> RunConfig:
    try:
        return RunConfig.model_validate(parameters)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        suffix = f" (+{more} more)" if more else ""
        raise ConfigError(f"{source}: {_describe(first)}{suffix}") from None


def zenml_secrets(raw: dict[str, Any], step: str) -> list[str]:
    """ZenML secrets the run configuration exports into `step`'s environment (run-wide and per step)."""
    step_conf = (raw.get("steps") or {}).get(step) or {}
    return [str(s) for s in (raw.get("secrets") or []) + (step_conf.get("secrets") or [])]


def load_run_config(arg: str, config_dir: Path = CONFIG_DIR) -> tuple[Path, RunConfig]:
    """Resolve, read and validate a run configuration file. Raises ConfigError with one line."""
    path = resolve_config_path(arg, config_dir)
    raw = read_run_file(path)
    return path, parse_parameters(raw["parameters"], source=str(path))
