"""Folders of files (models, adapters, checkpoints) moved between local disk and a URI (a local path, `s3://`,
`gs://`, ... as the active ZenML stack's artifact store reads it), file by file, never archived.

Local-to-local copies go through `shutil.copyfile` (the kernel's copy_file_range/sendfile: no bytes pass
through Python); anything else goes through ZenML's file I/O (`zenml.io.fileio`), streamed in 64 MiB
chunks so a 5 GB safetensors shard never sits in memory. Several files move at once: a remote store's
throughput per connection is far below its total.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CHUNK = 64 * 2**20  # bytes per read when streaming between two filesystems
PARALLEL_FILES = 4


def is_remote(uri: str | os.PathLike[str]) -> bool:
    """A URI with a scheme other than file:// (read by ZenML's file I/O, not by the local filesystem)."""
    text = str(uri)
    return "://" in text and not text.startswith("file://")


def join(uri: str, *parts: str) -> str:
    """`uri/part/...` with forward slashes, also for object-store URIs."""
    return "/".join([str(uri).rstrip("/"), *(p.strip("/") for p in parts)])


def copy_file(src: str, dst: str) -> None:
    """Copy one file, creating the destination's parent folder; streamed when the two sides differ."""
    if not is_remote(src) and not is_remote(dst):
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return
    from zenml.io import fileio

    parent = dst.rsplit("/", 1)[0]
    if is_remote(dst) or not os.path.isdir(parent):
        fileio.makedirs(parent)
    if is_remote(src) and is_remote(dst) and src.split("://", 1)[0] == dst.split("://", 1)[0]:
        fileio.copy(src, dst, overwrite=True)  # same store: a server-side copy where the filesystem has one
        return
    with fileio.open(src, "rb") as reader, fileio.open(dst, "wb") as writer:
        shutil.copyfileobj(reader, writer, CHUNK)


def list_files(root: str) -> list[str]:
    """Every file under `root` (a local folder or a URI), as sorted paths relative to it with forward slashes."""
    if not is_remote(root):
        base = Path(root)
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
    from zenml.io import fileio

    found = []
    prefix = str(root).rstrip("/")
    for folder, _dirs, files in fileio.walk(prefix):
        rel = str(folder).rstrip("/")[len(prefix):].strip("/")
        found.extend(f"{rel}/{name}" if rel else str(name) for name in files)
    return sorted(found)


def copy_files(src_root: str, dst_root: str, files: Iterable[str]) -> None:
    """Copy the relative paths `files` from `src_root` to `dst_root`, several at a time."""
    files = list(files)
    with ThreadPoolExecutor(max_workers=min(PARALLEL_FILES, max(1, len(files)))) as pool:
        list(pool.map(lambda rel: copy_file(join(src_root, rel), join(dst_root, rel)), files))


def copy_tree(src_root: str, dst_root: str, skip: Iterable[str] = ()) -> list[str]:
    """Copy every file under `src_root` to `dst_root` (relative paths kept), except the relative paths in `skip`;
    returns what it copied."""
    files = [rel for rel in list_files(src_root) if rel not in set(skip)]
    copy_files(src_root, dst_root, files)
    return files


HASH_CHUNK = 64 * 2**20  # a file is hashed in pieces of this size, several at a time


def _chunk_digest(path: Path, offset: int, length: int) -> bytes:
    import xxhash

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        # The map spares a copy, and xxhash releases the GIL on large buffers: pieces hash on all cores.
        return xxhash.xxh3_128(memoryview(mapped)[offset:offset + length]).digest()


def content_digest(path: Path) -> str:
    """A content hash of a local file or folder: each file's relative path (empty for a lone file), size and the
    XXH3-128 digest of each 64 MiB piece of it, in sorted order, combined with SHA-256. XXH3 (10+ GB/s a core,
    against SHA-256's ~1) keeps the hash from halving the speed of saving a 16 GB model; it identifies content
    for caching and pinning (accidental collisions at 2^-128), it is not a defence against crafted files.
    Hashing in pieces lets one large file (a 5 GB safetensors shard) use every core. A missing path has a
    digest of its own, so a fingerprint that includes it still changes once the path appears."""
    if path.is_file():
        root, files = path, [""]
    elif path.is_dir():
        root, files = path, list_files(str(path))
    else:
        return hashlib.sha256(b"<missing>").hexdigest()
    pieces = []
    for rel in files:
        size = (root / rel).stat().st_size
        pieces.extend((rel, offset, min(HASH_CHUNK, size - offset)) for offset in range(0, size, HASH_CHUNK))
    with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, len(pieces)))) as pool:
        digests = list(pool.map(lambda piece: _chunk_digest(root / piece[0], piece[1], piece[2]), pieces))
    combined = hashlib.sha256()
    for rel in files:
        combined.update(f"{rel}\0{(root / rel).stat().st_size}\n".encode())
    for (rel, offset, _), digest in zip(pieces, digests, strict=True):
        combined.update(f"{rel}\0{offset}\0".encode() + digest)
    return combined.hexdigest()
