"""The benchmarked code in the pod: in a step's own process Unsloth is imported before transformers.

ZenML's step entrypoint activates the installed integrations, imports the pipeline's module and the step
modules, loads the inputs, then calls the step. Each probe runs in a fresh interpreter, as that process is.
On this CPU machine a stand-in `unsloth` module (a finder on sys.meta_path, so `find_spec` sees it as
installed) records which of transformers, trl and peft were already imported when it was, and stops at
`FastLanguageModel.from_pretrained`: what runs before that is the step's real code.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT, STEPS

HEAVY = ("transformers", "trl", "peft")

ENTRYPOINT_IMPORTS = f"""
import sys

import pytest
from zenml.integrations.registry import integration_registry
integration_registry.activate_integrations()
import twinsft.pipelines.llm_sft
for step in {list(STEPS)!r}:
    __import__("twinsft.steps." + step)
print("LOADED", sorted(m for m in {HEAVY!r} if m in sys.modules))
"""

FAKE_UNSLOTH = """
import importlib.abc, importlib.machinery, json, sys
import twinsft.runtime

class LoadStops(Exception):
    pass

class FakeUnsloth(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name == "unsloth" else None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        print("UNSLOTH_AFTER", json.dumps(sorted(m for m in HEAVY if m in sys.modules)), flush=True)
        class FastLanguageModel:
            @staticmethod
            def from_pretrained(**kwargs):
                raise LoadStops(kwargs["model_name"])
        module.FastLanguageModel = FastLanguageModel

HEAVY = {heavy!r}
sys.meta_path.insert(0, FakeUnsloth())
twinsft.runtime.cuda_available = lambda: True  # the backend choice sees a GPU; nothing else runs on one
"""

STEP_CALL = """
from types import SimpleNamespace
from datasets import Dataset
from twinsft.config import LoraSpec, ModelSpec, TrainingSpec
module = sys.modules["twinsft.steps.train_sft"]  # the package's `train_sft` attribute is the step itself

module.get_step_context = lambda: SimpleNamespace(pipeline_run=SimpleNamespace(name="probe"), model_version=None)
rows = Dataset.from_dict({{"text": ["a b c", "d e f"]}})
training = TrainingSpec(backend={backend!r}, optim="adamw_torch", precision="fp32", memory_plan="off",
                        checkpoint_dir={checkpoints!r})
try:
    module.train_sft.entrypoint(rows, rows, ModelSpec(name={model!r}), LoraSpec(r=4, alpha=8), training)
except LoadStops:
    print("REACHED_UNSLOTH_LOAD")
"""


def probe(code: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_the_step_entrypoints_imports_leave_transformers_trl_and_peft_unimported():
    out = probe(ENTRYPOINT_IMPORTS).stdout
    assert "LOADED []" in out, out


def test_train_sft_imports_unsloth_before_transformers_when_the_backend_is_unsloth(tmp_path, tiny_model_dir):
    """backend auto (the default) on a GPU machine with unsloth installed resolves to Unsloth."""
    code = ENTRYPOINT_IMPORTS + FAKE_UNSLOTH.format(heavy=HEAVY) + STEP_CALL.format(
        backend="auto", checkpoints=str(tmp_path / "ckpt"), model=str(tiny_model_dir))
    out = probe(code).stdout
    assert "REACHED_UNSLOTH_LOAD" in out, out  # training really went down the Unsloth path
    assert 'UNSLOTH_AFTER []' in out, out  # nothing Unsloth patches was imported before it


def test_the_trl_backend_never_imports_unsloth(tmp_path, tiny_model_dir):
    """The same probe on backend trl: no Unsloth import, so the stand-in would show it."""
    code = ENTRYPOINT_IMPORTS + FAKE_UNSLOTH.format(heavy=HEAVY) + """
from twinsft.runtime import import_unsloth_first
import_unsloth_first("trl")
print("UNSLOTH_LOADED", "unsloth" in sys.modules)
"""
    assert "UNSLOTH_LOADED False" in probe(code).stdout


def test_too_late_is_said_not_hidden():
    """When transformers came first, importing Unsloth cannot patch cleanly: a warning names the culprit."""
    code = FAKE_UNSLOTH.format(heavy=HEAVY) + """
import logging, transformers
logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
twinsft.runtime.import_unsloth_first("auto")
print("UNSLOTH_LOADED", "unsloth" in sys.modules)
"""
    out = probe(code).stdout
    assert "UNSLOTH_LOADED False" in out and "transformers was imported before unsloth" in out, out


GPU_TRAIN = """
import sys

import pytest
from pathlib import Path
from datasets import Dataset
from twinsft.config import LoraSpec, ModelSpec
from twinsft.training import train_lora
from tests.helpers import training_spec

model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
rows = Dataset.from_dict({"text": [f"### Instruction:\\nSay {i}.\\n\\n### Response:\\n{i}</s>" for i in range(16)]})
training = training_spec(out, backend="unsloth", max_steps=2, precision="auto", memory_plan="off")
report = train_lora(rows, rows.select(range(4)), ModelSpec(name=str(model_dir), max_seq_length=128),
                    LoraSpec(r=4, alpha=8), training, out / "adapter")
print("BACKEND", report.backend, "STEPS", report.steps)
"""


def gpu_with_unsloth() -> bool:
    import importlib.util

    if importlib.util.find_spec("unsloth") is None:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not gpu_with_unsloth(), reason="needs a CUDA GPU and the gpu extra (unsloth)")
def test_on_a_gpu_train_sft_in_a_fresh_process_trains_with_unsloth_and_no_import_order_warning(tmp_path,
                                                                                              tiny_model_dir):
    """The real thing, on the GPU machine: the step process's imports, then Unsloth training, and Unsloth's own
    "should be imported before transformers" warning absent from the output."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    # The fixture's 8-wide attention heads are narrower than Unsloth's kernels take: the same tokenizer on a
    # 64-wide head model.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    model_dir = tmp_path / "model"
    AutoModelForCausalLM.from_config(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    proc = probe(ENTRYPOINT_IMPORTS + GPU_TRAIN.replace("sys.argv[1]", repr(str(model_dir))).replace(
        "sys.argv[2]", repr(str(tmp_path / "run"))))
    output = proc.stdout + proc.stderr
    assert "LOADED []" in output and "BACKEND unsloth STEPS 2" in output, output[-3000:]
    assert "should be imported before" not in output, output[-3000:]
