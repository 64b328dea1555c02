"""The rule behind preflight's bitsandbytes check: what training needs installed."""

import importlib.util

import pytest

from twinsft.config import ModelSpec, TrainingSpec
from twinsft.errors import ConfigError
from twinsft.runtime import check_training_requirements


def test_qlora_with_cuda_but_without_bitsandbytes_names_the_install(monkeypatch):
    """CUDA reported present at the torch boundary; bitsandbytes is really absent on this machine."""
    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes installed")
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ConfigError, match=r"model.load_in_4bit \(QLoRA\) needs bitsandbytes: `pip install"):
        check_training_requirements(ModelSpec(load_in_4bit=True), TrainingSpec(optim="adamw_torch"))
