"""The GGUF tests' models: the demo model exported once for the session, and a fresh copy of the tiny one.

The demo model (SmolLM2-135M-Instruct: real weights, a real 49k-token BPE tokenizer) is exported to f16 and q8_0
and compared with the original GGUF it was converted from; the tiny random Llama covers failures, RoPE scaling
and the wiring into the export stage.
"""

from __future__ import annotations

import shutil

import pytest

from twinsft.export.gguf import export_gguf


@pytest.fixture(scope="session")
def demo_gguf(demo_merged_dir, tmp_path_factory):
    """The demo model exported to both files (once: the write, vocabulary and folder tests all read it)."""
    model_dir = tmp_path_factory.mktemp("demo-export") / "smollm2-twin"
    shutil.copytree(demo_merged_dir, model_dir)
    return model_dir, export_gguf(model_dir, ["f16", "q8_0"], "smollm2-twin")


@pytest.fixture
def tiny_copy(tiny_merged_dir, tmp_path):
    model_dir = tmp_path / "tiny-twin"
    shutil.copytree(tiny_merged_dir, model_dir)
    return model_dir
