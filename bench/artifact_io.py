"""Saving and loading a merged model as a ZenML artifact (twinsft's ModelFolder) vs a plain file copy, same disk.

    python -m bench.artifact_io [--repeats 3] [--out bench/results/<date>-cpu-<name>-artifact-io.json]

Models: the demo model (SmolLM2-135M-Instruct, converted from its GGUF and saved as the export saves a merged
model, bf16) and a Llama of about 1 GB with random bf16 weights in safetensors (built once under
outputs/bench/). The ZenML store and its local artifact store are fresh, in a temporary folder on the disk the
models are on (`--tmp`, default outputs/bench/artifact-io), so all three ways move bytes on one disk:

- plain copy: `shutil.copytree` (the kernel copies each file);
- artifact save: `zenml.save_artifact(ModelFolder(dir))`, which copies the files into the artifact store,
  hashes them (the cache key) and records the artifact in the ZenML store;
- of which the files: the materializer's save alone (copy, hash, manifest: the bytes moved), without ZenML's
  records of the new version (SQL rows and metadata, a fixed cost per artifact whatever its size);
- artifact load: `artifact_version.load()` into an empty local cache (as on a fresh machine);
- for reference, ZenML's own `Path` materializer (a gzipped tarball), what `lora_adapter` used before
  (once, on models up to `--tarball-max-mb`).

The content hash (XXH3-128 of every 64 MiB piece, on all cores, while the files copy) is also timed alone.

Each is timed `--repeats` times, alternating, with the source files in the page cache and after an
`os.sync()` (no writeback of the previous way's files in flight); the median is reported. MB/s = the
folder's bytes / seconds; "vs copy" = throughput / plain copy's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RANDOM_1GB = dict(hidden_size=1536, intermediate_size=4096, num_hidden_layers=14, num_attention_heads=12,
                  num_key_value_heads=12, max_position_embeddings=4096, tie_word_embeddings=False)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def demo_merged(out: Path) -> Path:
    """The demo model saved as the export saves a merged one (bf16 weights, tokenizer, template)."""
    if (out / "config.json").exists():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.helpers import DEMO_MODEL, save_as_merged
    from twinsft.models import resolve_model

    source = resolve_model(DEMO_MODEL)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    out.mkdir(parents=True, exist_ok=True)
    return save_as_merged(model, AutoTokenizer.from_pretrained(source), out)


def random_1gb(out: Path, tokenizer_dir: Path) -> Path:
    from bench import random_llama

    random_llama.SHAPES.setdefault("random-1gb", RANDOM_1GB)
    return random_llama.make_random_llama("random-1gb", out, tokenizer_dir)


def timed(fn: Any) -> tuple[float, Any]:
    os.sync()  # no dirty pages left by the previous way: its writeback would stall this one's writes
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def measure(name: str, folder: Path, work: Path, repeats: int, tarball: bool) -> dict[str, Any]:
    from zenml import save_artifact
    from zenml.client import Client

    from twinsft import storage
    from twinsft.steps.model_folder import ModelFolder, ModelFolderMaterializer

    size = folder_bytes(folder)
    slug = name.split(" ")[0].lower()
    artifact_store = Client().active_stack.artifact_store
    times: dict[str, list[float]] = {"plain copy": [], "artifact save": [], "  of which the files (materializer)": [],
                                     "  of which content hash (alone)": [], "artifact load": []}
    shutil.copytree(folder, work / "warm")  # read once: every way then starts from the page cache
    shutil.rmtree(work / "warm")
    for i in range(repeats):
        dst = work / f"copy-{i}"
        seconds, _ = timed(lambda dst=dst: shutil.copytree(folder, dst))
        times["plain copy"].append(seconds)
        shutil.rmtree(dst)
        seconds, saved = timed(lambda: save_artifact(ModelFolder(folder), name=f"bench-{slug}"))
        times["artifact save"].append(seconds)
        files_uri = storage.join(artifact_store.path, "bench-files", str(i))
        materializer = ModelFolderMaterializer(uri=files_uri, artifact_store=artifact_store)
        seconds, _ = timed(lambda m=materializer: m.save(ModelFolder(folder)))
        times["  of which the files (materializer)"].append(seconds)
        shutil.rmtree(files_uri)
        times["  of which content hash (alone)"].append(timed(lambda: storage.content_digest(folder))[0])
        version = Client().get_artifact_version(saved.id)
        os.environ["TWINSFT_CACHE"] = str(work / f"cache-{i}")  # empty: the load copies every file
        seconds, loaded = timed(version.load)
        times["artifact load"].append(seconds)
        assert folder_bytes(loaded.path) == size
        shutil.rmtree(work / f"cache-{i}")
        shutil.rmtree(version.uri)
    if tarball:  # once: it is slow
        seconds, saved = timed(lambda: save_artifact(Path(folder), name=f"bench-{slug}-tarball"))
        times["ZenML Path materializer save (tar.gz)"] = [seconds]
        version = Client().get_artifact_version(saved.id)
        times["ZenML Path materializer load (tar.gz)"] = [timed(version.load)[0]]
    median = {way: statistics.median(t) for way, t in times.items()}
    copy_mbps = size / 2**20 / median["plain copy"]
    rows = []
    for way, seconds in median.items():
        mbps = size / 2**20 / seconds
        rows.append({"way": way, "seconds": round(seconds, 3), "mb_per_s": round(mbps, 1),
                     "vs_plain_copy": round(mbps / copy_mbps, 3), "runs": [round(t, 3) for t in times[way]]})
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return {"model": name, "bytes": size, "files": len(files), "rows": rows}


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"\n{'model':<22} {'MB':>7}  {'way':<38} {'s':>7} {'MB/s':>8} {'vs copy':>8}")
    for result in results:
        for row in result["rows"]:
            print(f"{result['model']:<22} {result['bytes'] / 2**20:>7.0f}  {row['way']:<38} {row['seconds']:>7.2f} "
                  f"{row['mb_per_s']:>8.0f} {row['vs_plain_copy']:>8.0%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tmp", default=str(REPO / "outputs" / "bench" / "artifact-io"))
    parser.add_argument("--models", default="demo,random-1gb")
    parser.add_argument("--tarball-max-mb", type=float, default=300,
                        help="time ZenML's Path materializer (gzip: slow) on models up to this size only")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve() if args.out else None  # the run changes directory (its own ZenML repo)

    base = Path(args.tmp).resolve()
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base, prefix="run-"))
    # A fresh ZenML store and artifact store on the same disk, before zenml is imported.
    os.environ["ZENML_CONFIG_PATH"] = str(work / "zenml")
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.setdefault("ZENML_LOGGING_VERBOSITY", "ERROR")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    from zenml.client import Client

    Client.initialize(root=work)  # the nearest .zen: not the checkout's (tests make one there)
    os.chdir(work)
    folders = {}
    wanted = args.models.split(",")
    demo = demo_merged(base / "demo-merged")
    if "demo" in wanted:
        folders["demo (SmolLM2-135M)"] = demo
    if "random-1gb" in wanted:
        folders["random Llama 1 GB"] = random_1gb(base / "random-1gb", demo)
    cache = os.environ.get("TWINSFT_CACHE")
    results = []
    try:
        for name, folder in folders.items():
            print(f"{name}: {folder} ({folder_bytes(folder) / 2**20:.0f} MB)", flush=True)
            tarball = folder_bytes(folder) <= args.tarball_max_mb * 2**20
            results.append(measure(name, folder, work, args.repeats, tarball=tarball))
    finally:
        if cache is None:
            os.environ.pop("TWINSFT_CACHE", None)
        shutil.rmtree(work, ignore_errors=True)
    print_table(results)
    if out:
        record = {"date": date.today().isoformat(), "machine": f"{platform.node()} ({os.cpu_count()} CPUs)",
                  "disk": "artifact store, copies and models on one local disk; files in the page cache",
                  "repeats": args.repeats, "results": results}
        out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
