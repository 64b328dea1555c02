"""How the pipeline stores a folder of model files (the LoRA adapter, the merged model): file by file in the
artifact store, keyed by a content hash, loadable on any machine that reaches the store.

ZenML's own `Path` materializer packs a folder into one gzipped tarball: for a 16 GB merged model that is
minutes of single-threaded compression of incompressible weights, and a load must unpack it all again.
Here each file is copied as it is (see twinsft.storage), with a manifest written last, so an artifact
without its manifest is known to be incomplete. Loading copies the files into a local cache folder named
by their content hash (`$TWINSFT_CACHE/artifacts/<content hash>`, default `~/.cache/twinsft`), so a step that
loads the same model again on the same machine copies nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from twinsft import storage
from twinsft.models import cache_root

MANIFEST = "twinsft-folder.json"  # written last: its presence means every file arrived


class ModelFolder(os.PathLike):
    """A folder of model files on this machine; pass it wherever a path is read (`from_pretrained(folder)`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._digest: str | None = None

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"ModelFolder({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelFolder) and self.digest() == other.digest()

    __hash__ = None  # type: ignore[assignment]  # mutable files: never a dict key

    def digest(self) -> str:
        """The content hash of the files (computed once: the folder is not changed after a step returns it)."""
        if self._digest is None:
            self._digest = storage.content_digest(self.path)
        return self._digest


def local_dir(folder: ModelFolder | str | os.PathLike[str]) -> Path:
    """The local folder of a step input: a ModelFolder, or a `Path` that runs made before ModelFolder existed
    stored (ZenML's Path materializer unpacks those into a temporary folder)."""
    return Path(folder)


class ModelFolderMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ModelFolder,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def save(self, data: ModelFolder) -> None:
        # Copy and hash at once: the copy is the kernel's (or the network's), the hash one core's.
        with ThreadPoolExecutor(max_workers=1) as pool:
            digest = pool.submit(data.digest)
            files = storage.copy_tree(str(data.path), self.uri, skip=(MANIFEST,))
            manifest = {"files": files, "digest": digest.result()}
        with fileio.open(storage.join(self.uri, MANIFEST), "w") as f:
            f.write(json.dumps(manifest, indent=1))

    def _manifest(self) -> dict[str, Any]:
        path = storage.join(self.uri, MANIFEST)
        if not fileio.exists(path):
            raise FileNotFoundError(f"{self.uri} has no {MANIFEST}: the model folder's upload did not finish")
        with fileio.open(path, "r") as f:
            return json.loads(f.read())

    def load(self, data_type: type[Any]) -> ModelFolder:
        manifest = self._manifest()
        target = cache_root() / "artifacts" / manifest["digest"]
        if not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Copied beside the target, then renamed: a crash mid-copy never leaves a folder that looks whole.
            partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
            try:
                storage.copy_files(self.uri, str(partial), manifest["files"])
                os.replace(partial, target)
            except OSError:
                if not target.is_dir():  # not another process that finished the same copy first
                    raise
            finally:
                shutil.rmtree(partial, ignore_errors=True)
        folder = ModelFolder(target)
        folder._digest = manifest["digest"]
        return folder

    def compute_content_hash(self, data: ModelFolder) -> str:
        return data.digest()

    def extract_metadata(self, data: ModelFolder) -> dict[str, Any]:
        files = [p for p in data.path.rglob("*") if p.is_file()]
        return {"files": len(files), "size_mb": round(sum(p.stat().st_size for p in files) / 2**20, 1)}
