"""Uploaded files' contents on disk, content-addressed: DATA_DIR/http/files/ab/abcdef…"""

from __future__ import annotations

import os
from pathlib import Path


class FileStore:
    """Content-addressed blobs: the same bytes are kept once, whoever uploads them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, source: Path, sha256: str) -> Path:
        """Move `source` into place under its hash (kept as is when the content is already there)."""
        target = self.path(sha256)
        if target.is_file():
            source.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        return target

    def remove(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
