"""What stops a GGUF export: a model this exporter cannot write, or a file that does not reproduce its model."""

from __future__ import annotations

from twinsft.errors import UserError
from twinsft.export.merge import ExportMismatch


class GGUFUnsupported(UserError):
    """The merged model cannot be written as a GGUF file by this exporter (the message says what and the fix)."""


class GGUFMismatch(ExportMismatch):
    """A GGUF file does not reproduce the checkpoint it was compared with: the export keeps nothing."""


def unsupported(what: str) -> GGUFUnsupported:
    return GGUFUnsupported(
        f"export.gguf: {what}; this exporter writes Llama models with a byte-level BPE tokenizer. Set export.gguf: [] "
        "(the merged model is saved either way) and convert it with llama.cpp's convert_hf_to_gguf.py"
    )
