"""The `gguf/` folder of a merged model: every asked-for file written, verified against the merged model and
given an Ollama Modelfile in a temporary folder, which then replaces `<model_dir>/gguf/` in one rename."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

from twinsft.data.alpaca import ALPACA
from twinsft.export.gguf.errors import GGUFMismatch, unsupported
from twinsft.export.gguf.verify import GGUFCheck, Verification, verify
from twinsft.export.gguf.vocab import read_vocab
from twinsft.export.gguf.write import llama_config, write_gguf

GGUF_DIR = "gguf"  # inside the merged model folder: uploaded with it, ignored by from_pretrained(model_dir)
MODELFILE = "Modelfile"


class GGUFExport(BaseModel):
    dir: str
    modelfile: str
    files: dict[str, GGUFCheck]
    verified_tokens: int
    warnings: list[str] = []


def render_modelfile(gguf_file: str, eos_token: str) -> str:
    """An Ollama Modelfile: the GGUF file next to it, the training prompt as the template, stop at EOS.

    Ollama's Go template fills `{{ .Prompt }}` with the user's message, so the rendered prompt is exactly
    `ALPACA.prompt(message)`; the template is raw text between triple quotes.
    """
    template = ALPACA.prompt("{{ .Prompt }}")
    assert '"""' not in template and template.count("{{") == 1, "the Alpaca preamble must stay plain text"
    stop = json.dumps(eos_token, ensure_ascii=False)
    return f'FROM ./{gguf_file}\nTEMPLATE """{template}"""\nPARAMETER stop {stop}\n'


def verify_written(model_dir: Path, paths: dict[str, Path]) -> Verification:
    """The written files verified, each of the type it was written as; a failure says nothing is kept."""
    try:
        result = verify(model_dir, paths.values())
        found = [check.quantization for check in result.checks]
        if found != list(paths):  # the dict GGUFExport.files is keyed by what each file says it is
            raise GGUFMismatch(f"the files written as {', '.join(paths)} say they are {', '.join(found)}")
    except GGUFMismatch as e:
        raise GGUFMismatch(f"{e}; no GGUF file was kept") from None
    return result


def export_gguf(model_dir: Path, quantizations: list[str], name: str) -> GGUFExport:
    """Write, verify, then move `<model_dir>/gguf/` into place (replacing an older one); nothing is kept on failure.

    The Modelfile's FROM names the first file in `quantizations`.
    """
    model_dir = model_dir.resolve()
    final = model_dir / GGUF_DIR
    # Next to the model folder, not inside it: a crash must never leave a half-written file that a push uploads.
    tmp = Path(tempfile.mkdtemp(dir=model_dir.parent, prefix=f".{model_dir.name}-gguf-"))
    try:
        vocab = read_vocab(model_dir, llama_config(model_dir).vocab_size)
        if vocab.eos is None:
            raise unsupported("the tokenizer has no EOS token to stop generation at")
        paths = {q: tmp / f"{name}-{q}.gguf" for q in quantizations}
        for quantization, path in paths.items():
            write_gguf(model_dir, path, quantization, name, vocab)
        verified = verify_written(model_dir, paths)
        (tmp / MODELFILE).write_text(render_modelfile(paths[quantizations[0]].name, vocab.tokens[vocab.eos]))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = {c.quantization: c.model_copy(update={"path": str(final / Path(c.path).name)}) for c in verified.checks}
    return GGUFExport(dir=str(final), modelfile=str(final / MODELFILE), files=files,
                      verified_tokens=verified.verified_tokens, warnings=verified.warnings)
