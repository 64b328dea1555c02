"""GGUF files of the merged model for llama.cpp and Ollama, written tensor by tensor and verified before they are kept.

`export_gguf` (`folder`) writes `<name>-f16.gguf` and/or `<name>-q8_0.gguf` plus an Ollama `Modelfile` into a
temporary folder next to the saved merged model, reloads every file with transformers' GGUF reader and compares
it with the merged model (`verify`; f16: logits and greedy tokens; q8_0: greedy tokens, a mismatch is a
warning), and only then moves the folder into place as `<model_dir>/gguf/`. `write` writes one file: its
tensors come from `tensors`, its vocabulary from `vocab`. The verifier reads everything it checks from the file
and the checkpoint it is given, so it checks GGUF files from any converter.

Only Llama-architecture models with a byte-level BPE tokenizer (Llama 3, SmolLM2) are written; anything else
stops with one line naming what is not supported.
"""

from twinsft.export.gguf.errors import GGUFMismatch, GGUFUnsupported
from twinsft.export.gguf.folder import GGUF_DIR, MODELFILE, GGUFExport, export_gguf, render_modelfile
from twinsft.export.gguf.tensors import permute_for_rope
from twinsft.export.gguf.verify import F16_MAX_LOGIT_DIFF, GGUFCheck, Verification, verify
from twinsft.export.gguf.vocab import LLAMA3_SPLIT, Vocab, pre_tokenizer_type, read_vocab
from twinsft.export.gguf.write import write_gguf

__all__ = [
    "F16_MAX_LOGIT_DIFF", "GGUF_DIR", "LLAMA3_SPLIT", "MODELFILE", "GGUFCheck", "GGUFExport", "GGUFMismatch",
    "GGUFUnsupported", "Verification", "Vocab", "export_gguf", "permute_for_rope", "pre_tokenizer_type", "read_vocab",
    "render_modelfile", "verify", "write_gguf",
]
