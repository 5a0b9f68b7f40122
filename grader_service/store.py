"""Graders on disk: one spec file per (tenant, version) plus an index, under the data directory.

    DATA_DIR/index.json                     tenants -> grader ids -> name, type, versions
    DATA_DIR/specs/<tenant>/<version>.json  the spec, canonical JSON (Python graders carry their source)
    DATA_DIR/.lock                          held by the one server that uses the directory

A version is the SHA-256 of the canonical spec, so the same content is one version; uploading
content a tenant already has returns the grader that holds it. A new grader's id is derived from
the tenant and its first version, so replicas that receive the same upload agree on the id.
Writes go to a temporary file and are renamed into place, so a crash leaves the previous index
intact.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

INDEX_FORMAT = 1


class GraderNotFound(KeyError):
    """No such grader (or version) for this tenant."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "grader not found"


class DataDirInUse(RuntimeError):
    """Another server holds the data directory."""


class VersionRecord(BaseModel):
    version: str
    created_unix_ms: int


class GraderRecord(BaseModel):
    id: str
    name: str
    type: str
    created_unix_ms: int
    current: str
    versions: list[VersionRecord] = Field(default_factory=list)


class Index(BaseModel):
    format: int = INDEX_FORMAT
    tenants: dict[str, dict[str, GraderRecord]] = Field(default_factory=dict)


def canonical_json(spec: dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_version(spec: dict[str, Any]) -> str:
    """The version of a spec: the first 24 hex digits of the SHA-256 of its canonical JSON."""
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()[:24]


def grader_id_for(tenant: str, version: str) -> str:
    """A new grader's id, derived from its first version: replicas given the same upload agree on it."""
    return "gr_" + hashlib.sha256(f"{tenant}\0{version}".encode()).hexdigest()[:16]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class GraderStore:
    """Thread-safe, tenant-scoped grader storage. A tenant only ever sees its own graders."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._lock_file = self._acquire_dir_lock()
        self._index = self._load_index()
        self._specs: dict[tuple[str, str], dict[str, Any]] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def _acquire_dir_lock(self):  # -> IO
        fh = open(self.data_dir / ".lock", "a+")  # noqa: SIM115 - held for the store's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise DataDirInUse(
                f"data directory {self.data_dir} is in use by {holder}; stop it or pick another --data-dir"
            ) from exc
        fh.seek(0)
        fh.truncate()
        fh.write(f"rft serve pid {os.getpid()}\n")
        fh.flush()
        return fh

    def close(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _load_index(self) -> Index:
        path = self.data_dir / "index.json"
        if not path.exists():
            return Index()
        index = Index.model_validate_json(path.read_bytes())
        if index.format != INDEX_FORMAT:
            raise RuntimeError(f"{path} has index format {index.format}; this rftkit reads {INDEX_FORMAT}")
        return index

    def _save_index(self) -> None:
        _atomic_write(self.data_dir / "index.json", self._index.model_dump_json(indent=1))

    def _spec_path(self, tenant: str, version: str) -> Path:
        return self.data_dir / "specs" / tenant / f"{version}.json"

    # -- queries ----------------------------------------------------------------------------

    def list(self, tenant: str) -> list[GraderRecord]:
        with self._lock:
            graders = self._index.tenants.get(tenant, {})
            return sorted(
                (g.model_copy(deep=True) for g in graders.values()), key=lambda g: g.created_unix_ms
            )

    def get(self, tenant: str, grader_id: str, version: str | None = None) -> tuple[GraderRecord, str]:
        """The record and the resolved version (the current one when `version` is empty)."""
        with self._lock:
            record = self._index.tenants.get(tenant, {}).get(grader_id)
            if record is None:
                raise GraderNotFound(f"no grader {grader_id!r} for this tenant")
            version = version or record.current
            if all(v.version != version for v in record.versions):
                raise GraderNotFound(f"grader {grader_id!r} has no version {version!r}")
            return record.model_copy(deep=True), version

    def spec(self, tenant: str, version: str) -> dict[str, Any]:
        """The stored spec of one of the tenant's versions."""
        key = (tenant, version)
        with self._lock:
            cached = self._specs.get(key)
        if cached is None:
            path = self._spec_path(tenant, version)
            try:
                cached = json.loads(path.read_text())
            except FileNotFoundError as exc:
                raise GraderNotFound(f"version {version!r} not found") from exc
            with self._lock:
                self._specs[key] = cached
        return cached

    # -- changes ----------------------------------------------------------------------------

    def create(
        self, tenant: str, spec: dict[str, Any], grader_id: str | None = None
    ) -> tuple[GraderRecord, str, bool]:
        """Store a spec; returns (record, version, created_new_version)."""
        version = content_version(spec)
        name = str(spec.get("name", "grader"))
        type_name = str(spec.get("type", ""))
        now = _now_ms()
        with self._lock:
            graders = self._index.tenants.setdefault(tenant, {})
            if grader_id:
                record = graders.get(grader_id)
                if record is None:
                    raise GraderNotFound(f"no grader {grader_id!r} for this tenant")
            else:
                record = next(
                    (g for g in graders.values() if any(v.version == version for v in g.versions)), None
                )
                if record is not None:  # same content again: one version
                    return record.model_copy(deep=True), version, False
                record = GraderRecord(
                    id=grader_id_for(tenant, version),
                    name=name,
                    type=type_name,
                    created_unix_ms=now,
                    current="",
                )
                graders[record.id] = record
            is_new = all(v.version != version for v in record.versions)
            if is_new:
                _atomic_write(self._spec_path(tenant, version), canonical_json(spec))
                record.versions.append(VersionRecord(version=version, created_unix_ms=now))
            record.current, record.name, record.type = version, name, type_name
            self._specs[(tenant, version)] = spec
            self._save_index()
            return record.model_copy(deep=True), version, is_new

    def delete(self, tenant: str, grader_id: str) -> list[str]:
        """Remove a grader; returns its versions (their spec files go unless another grader uses them)."""
        with self._lock:
            graders = self._index.tenants.get(tenant, {})
            record = graders.pop(grader_id, None)
            if record is None:
                raise GraderNotFound(f"no grader {grader_id!r} for this tenant")
            self._save_index()
            still_used = {v.version for g in graders.values() for v in g.versions}
            versions = [v.version for v in record.versions]
            for version in versions:
                if version not in still_used:
                    self._spec_path(tenant, version).unlink(missing_ok=True)
                    self._specs.pop((tenant, version), None)
            return versions
