"""What runs here: the machine (what it has for a configuration, backend and precision choices, where weights
go, peak memory; no device strings) and the libraries installed on it (versions, Unsloth's import order)."""

from __future__ import annotations

import importlib.util
import logging
import resource
import sys
from typing import TYPE_CHECKING, Any, Literal

from twinsft.errors import ConfigError

if TYPE_CHECKING:
    from twinsft.config import ModelSpec, TrainingSpec

log = logging.getLogger(__name__)

Backend = Literal["unsloth", "trl"]
Precision = Literal["bf16", "fp16", "fp32"]


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def unsloth_installed() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def pick_backend(requested: str) -> Backend:
    """auto: Unsloth when CUDA is present and unsloth is installed, else TRL + PEFT."""
    if requested == "trl":
        return "trl"
    if requested == "unsloth":
        if not cuda_available():
            raise ConfigError("training.backend 'unsloth' needs a CUDA GPU; use backend: trl (or auto) on this machine")
        if not unsloth_installed():
            raise ConfigError("training.backend 'unsloth' needs the gpu extra: `pip install -e '.[gpu]'`")
        return "unsloth"
    return "unsloth" if cuda_available() and unsloth_installed() else "trl"


def device_map() -> dict[str, int] | None:
    """`from_pretrained(device_map=...)`: the whole model on this process's current GPU; None on a CPU."""
    if not cuda_available():
        return None
    import torch

    return {"": torch.cuda.current_device()}


def uses_bitsandbytes(model: ModelSpec, training: TrainingSpec) -> bool:
    return model.load_in_4bit or training.optim.endswith("_8bit") or "bnb" in training.optim


def check_training_requirements(model: ModelSpec, training: TrainingSpec) -> None:
    """What this machine must have for this config; each failure names the field and the fix.

    Imports torch only for what can fail (4-bit, an explicit backend or precision): "auto" never does.
    """
    if model.load_in_4bit and not cuda_available():
        raise ConfigError("model.load_in_4bit (QLoRA) needs a CUDA GPU; set it to false to train LoRA here")
    if uses_bitsandbytes(model, training) and importlib.util.find_spec("bitsandbytes") is None:
        what = "model.load_in_4bit (QLoRA)" if model.load_in_4bit else f"training.optim '{training.optim}'"
        raise ConfigError(f"{what} needs bitsandbytes: `pip install -e '.[gpu]'` on a CUDA machine")
    if training.backend != "auto":
        pick_backend(training.backend)
    if training.precision != "auto":
        pick_precision(training.precision)
    if model.base_precision != "auto":
        check_fp8_base(model.base_precision, training.backend)


# Unsloth quantizes a 16-bit checkpoint to FP8 on the fly only on compute capability 9.0+ (its
# _get_fp8_mode_and_check_settings); Ada (8.9) has FP8 tensor cores but Unsloth refuses it there.
FP8_MIN_CAPABILITY = (9, 0)


def check_fp8_base(base_precision: str, backend: str) -> None:
    """model.base_precision fp8 / fp8_block: Unsloth, a CUDA GPU of capability 9.0+ and torchao, else one line."""
    field = f"model.base_precision '{base_precision}'"
    if backend == "trl":
        raise ConfigError(f"{field} needs training.backend unsloth (or auto); set base_precision: auto for TRL + PEFT")
    if not cuda_available():
        raise ConfigError(f"{field} needs a CUDA GPU of compute capability {FP8_MIN_CAPABILITY[0]}.0+ (H100, H200); "
                          "set base_precision: auto on this machine")
    import torch

    capability = torch.cuda.get_device_capability()
    if tuple(capability) < FP8_MIN_CAPABILITY:
        raise ConfigError(f"{field} needs compute capability {FP8_MIN_CAPABILITY[0]}.{FP8_MIN_CAPABILITY[1]}+ "
                          f"(H100, H200); {torch.cuda.get_device_name()} has {capability[0]}.{capability[1]}: "
                          "set base_precision: auto")
    if not unsloth_installed():
        raise ConfigError(f"{field} needs the Unsloth backend: `pip install -e '.[gpu]'`")
    if importlib.util.find_spec("torchao") is None:
        raise ConfigError(f"{field} needs torchao (Unsloth's FP8 kernels): `pip install torchao`")


def unsloth_fp8_mode(base_precision: str) -> bool | str:
    """model.base_precision as Unsloth's `load_in_fp8` argument."""
    return {"auto": False, "fp8": True, "fp8_block": "block"}[base_precision]


def import_unsloth_first(requested_backend: str) -> None:
    """Import Unsloth now when the backend will be Unsloth: it patches transformers, trl and peft on import,
    so it must come before them, or training runs other code than the benchmarked one.

    run.py calls this before the pipeline; every process that trains calls it once where it starts, before its
    first transformers import: the `train_sft` step (in its own process on a remote stack, where ZenML's step
    entrypoint imports no transformers: the modules it imports keep those imports inside functions), each
    torchrun rank (`training.rank`), and `training.launch.train_lora` for direct callers. Idempotent.
    """
    if "unsloth" in sys.modules or requested_backend == "trl" or not (unsloth_installed() and cuda_available()):
        return
    early = [name for name in ("transformers", "trl", "peft") if name in sys.modules]
    if early:  # too late to patch cleanly; say which import came first instead of Unsloth's vaguer warning
        log.warning("%s was imported before unsloth in this process, so Unsloth's patches may be incomplete; "
                    "call twinsft.runtime.import_unsloth_first before them", ", ".join(early))
        return
    import unsloth  # noqa: F401


def pick_precision(requested: str) -> Precision:
    if requested != "auto":
        if requested in ("bf16", "fp16") and not cuda_available():
            raise ConfigError(f"training.precision '{requested}' needs a CUDA GPU here; use auto or fp32")
        return requested  # type: ignore[return-value]
    if not cuda_available():
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def torch_dtype(precision: Precision) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def export_dtype() -> Any:
    """16-bit weights for the merged model: bf16 unless the GPU only has fp16."""
    import torch

    if cuda_available() and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def peak_memory_gib() -> tuple[float, str]:
    """Peak allocated CUDA memory, or the process's peak RSS on a CPU."""
    if cuda_available():
        import torch

        return torch.cuda.max_memory_allocated() / 2**30, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "cpu_peak_rss"


def device_name() -> str:
    if cuda_available():
        import torch

        return torch.cuda.get_device_name()
    import platform

    return f"cpu ({platform.machine()})"


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth", "bitsandbytes", "zenml"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
