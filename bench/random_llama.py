"""Llama-shaped checkpoints with random weights, for GPU runs where no weights can be downloaded.

    python -m bench.random_llama --shape llama-3.1-8b --tokenizer DIR --out outputs/bench/random-llama-3.1-8b

The tokenizer comes from a directory the project saved (the demo model's converted tokenizer:
`python -m bench.random_llama --export-tokenizer DIR` writes it on a machine with the demo package).
"""

from __future__ import annotations

import argparse
from pathlib import Path

LLAMA3_ROPE = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192, "rope_type": "llama3"}
SHAPES = {
    # Meta-Llama-3.1-8B's config.json, weights excepted.
    "llama-3.1-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
                         rope_theta=500000.0, rope_scaling=LLAMA3_ROPE, rms_norm_eps=1e-5,
                         tie_word_embeddings=False),
    # Small enough for a quick pipeline run on a GPU; the tokenizer's vocabulary.
    "smoke": dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=4, num_attention_heads=8,
                  num_key_value_heads=4, max_position_embeddings=4096, tie_word_embeddings=False),
    # CPU tests of the benchmark code.
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False),
}


def make_random_llama(shape: str, out: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """Save a bf16 Llama of `shape` with random weights and the given tokenizer; reuse one already there."""
    if (out / "config.json").exists():
        return out
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    kwargs = dict(SHAPES[shape])
    kwargs.setdefault("vocab_size", len(tokenizer))
    config = LlamaConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **kwargs)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # random init is minutes on a CPU for 8B
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), max_shard_size="5GB")
    tokenizer.save_pretrained(str(out))
    return out


def export_demo_tokenizer(out: Path) -> Path:
    """The embedded demo model's tokenizer (pad and EOS fixed by the project), saved on its own."""
    from twinsft.cli.config_file import load_run_config
    from twinsft.models import load_tokenizer

    _, cfg = load_run_config("demo.yaml")
    load_tokenizer(cfg.model).save_pretrained(str(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="smoke")
    parser.add_argument("--tokenizer", type=Path, help="directory of a saved tokenizer")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--export-tokenizer", type=Path, metavar="DIR", help="save the demo tokenizer to DIR")
    args = parser.parse_args()
    if args.export_tokenizer:
        print(export_demo_tokenizer(args.export_tokenizer))
    if args.out:
        if not args.tokenizer:
            parser.error("--out needs --tokenizer")
        print(make_random_llama(args.shape, args.out, args.tokenizer))


if __name__ == "__main__":
    main()
