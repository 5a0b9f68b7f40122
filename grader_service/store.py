"""Graders in one SQLite database under the data directory (stdlib `sqlite3`, WAL mode).

    DATA_DIR/graders.db   graders, versions, specs (canonical JSON; Python graders carry their source)
    DATA_DIR/.lock        held by the one server that uses the directory, unless opened with shared=True

A version is the SHA-256 of the canonical spec, so the same content is one version; uploading
content a tenant already has returns the grader that holds it. A new grader's id is derived from
the tenant and its first version, so replicas that receive the same upload agree on the id.

Every change is one `BEGIN IMMEDIATE` transaction, so replicas on one host can share a database
(`GraderStore(data_dir, shared=True)`): WAL lets readers run beside the one writer, and a writer
waits up to `busy_timeout_s` for another. A crash leaves the last committed state. A data
directory written by an older rftkit (index.json and specs/) is imported into the database the
first time it is opened; those files are left as they were.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1
DB_NAME = "graders.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS graders (
    tenant TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
    created_unix_ms INTEGER NOT NULL, current TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE TABLE IF NOT EXISTS versions (
    tenant TEXT NOT NULL, grader_id TEXT NOT NULL, version TEXT NOT NULL, created_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, grader_id, version),
    FOREIGN KEY (tenant, grader_id) REFERENCES graders (tenant, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS versions_by_content ON versions (tenant, version);
CREATE TABLE IF NOT EXISTS specs (
    tenant TEXT NOT NULL, version TEXT NOT NULL, spec TEXT NOT NULL,
    PRIMARY KEY (tenant, version)
);
"""


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


class _LegacyIndex(BaseModel):
    """index.json of the file store this one replaced (read once, to import it)."""

    format: int = 1
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


class GraderStore:
    """Thread-safe, tenant-scoped grader storage. A tenant only ever sees its own graders.

    `shared=False` (the default) takes the data directory for this process alone; `shared=True`
    lets several service replicas on one host use the same database.
    """

    def __init__(self, data_dir: Path, *, shared: bool = False, busy_timeout_s: float = 30.0) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._lock_file: IO[str] | None = None if shared else self._acquire_dir_lock()
        self._specs: dict[tuple[str, str], dict[str, Any]] = {}
        try:
            self._db = self._connect(busy_timeout_s)
        except BaseException:
            self.close()
            raise

    # -- lifecycle --------------------------------------------------------------------------

    def _acquire_dir_lock(self) -> IO[str]:
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

    def _connect(self, busy_timeout_s: float) -> sqlite3.Connection:
        path = self.data_dir / DB_NAME
        # autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT of _transaction
        db = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        with self._transaction(db):
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise RuntimeError(f"{path} has schema version {version}; this rftkit reads {SCHEMA_VERSION}")
            if version == 0:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._import_legacy(db)
        return db

    def _import_legacy(self, db: sqlite3.Connection) -> None:
        """Copy index.json and specs/ of the earlier file store into the new database."""
        index_path = self.data_dir / "index.json"
        if not index_path.exists():
            return
        index = _LegacyIndex.model_validate_json(index_path.read_bytes())
        if index.format != 1:
            raise RuntimeError(f"{index_path} has index format {index.format}; this rftkit imports format 1")
        for tenant, graders in index.tenants.items():
            for record in graders.values():
                self._insert_grader(db, tenant, record)
                for v in record.versions:
                    spec_path = self.data_dir / "specs" / tenant / f"{v.version}.json"
                    row = (tenant, record.id, v.version, v.created_unix_ms)
                    db.execute("INSERT INTO versions VALUES (?, ?, ?, ?)", row)
                    spec = (tenant, v.version, spec_path.read_text())
                    db.execute("INSERT OR IGNORE INTO specs VALUES (?, ?, ?)", spec)

    def close(self) -> None:
        with self._lock:
            db = getattr(self, "_db", None)
            if db is not None:
                db.close()
                self._db = None
            if self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None

    @contextmanager
    def _transaction(self, db: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """One transaction: IMMEDIATE takes the write lock at once (changes), DEFERRED reads a snapshot."""
        db.execute(f"BEGIN {mode}")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def _use(self, mode: str = "DEFERRED") -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise RuntimeError("the grader store is closed")
            with self._transaction(self._db, mode) as db:
                yield db

    # -- rows -------------------------------------------------------------------------------

    @staticmethod
    def _insert_grader(db: sqlite3.Connection, tenant: str, record: GraderRecord) -> None:
        db.execute(
            "INSERT INTO graders VALUES (?, ?, ?, ?, ?, ?)",
            (tenant, record.id, record.name, record.type, record.created_unix_ms, record.current),
        )

    @staticmethod
    def _record(db: sqlite3.Connection, tenant: str, row: sqlite3.Row) -> GraderRecord:
        versions = db.execute(
            "SELECT version, created_unix_ms FROM versions WHERE tenant = ? AND grader_id = ? ORDER BY rowid",
            (tenant, row["id"]),
        ).fetchall()
        return GraderRecord(
            id=row["id"],
            name=row["name"],
            type=row["type"],
            created_unix_ms=row["created_unix_ms"],
            current=row["current"],
            versions=[
                VersionRecord(version=v["version"], created_unix_ms=v["created_unix_ms"]) for v in versions
            ],
        )

    def _find(self, db: sqlite3.Connection, tenant: str, grader_id: str) -> GraderRecord:
        row = db.execute("SELECT * FROM graders WHERE tenant = ? AND id = ?", (tenant, grader_id)).fetchone()
        if row is None:
            raise GraderNotFound(f"no grader {grader_id!r} for this tenant")
        return self._record(db, tenant, row)

    # -- queries ----------------------------------------------------------------------------

    def list(self, tenant: str) -> list[GraderRecord]:
        with self._use() as db:
            rows = db.execute(
                "SELECT * FROM graders WHERE tenant = ? ORDER BY created_unix_ms, rowid", (tenant,)
            ).fetchall()
            return [self._record(db, tenant, row) for row in rows]

    def get(self, tenant: str, grader_id: str, version: str | None = None) -> tuple[GraderRecord, str]:
        """The record and the resolved version (the current one when `version` is empty)."""
        with self._use() as db:
            record = self._find(db, tenant, grader_id)
        version = version or record.current
        if all(v.version != version for v in record.versions):
            raise GraderNotFound(f"grader {grader_id!r} has no version {version!r}")
        return record, version

    def spec(self, tenant: str, version: str) -> dict[str, Any]:
        """The stored spec of one of the tenant's versions (versions are content, so cached for good)."""
        key = (tenant, version)
        cached = self._specs.get(key)
        if cached is None:
            with self._use() as db:
                row = db.execute("SELECT spec FROM specs WHERE tenant = ? AND version = ?", key).fetchone()
            if row is None:
                raise GraderNotFound(f"version {version!r} not found")
            cached = self._specs.setdefault(key, json.loads(row["spec"]))
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
        with self._use("IMMEDIATE") as db:
            if grader_id:
                record = self._find(db, tenant, grader_id)
            else:
                holder = db.execute(
                    "SELECT grader_id FROM versions WHERE tenant = ? AND version = ? ORDER BY rowid LIMIT 1",
                    (tenant, version),
                ).fetchone()
                if holder is not None:  # same content again: one version
                    return self._find(db, tenant, holder["grader_id"]), version, False
                record = GraderRecord(
                    id=grader_id_for(tenant, version),
                    name=name,
                    type=type_name,
                    created_unix_ms=now,
                    current="",
                )
                self._insert_grader(db, tenant, record)
            is_new = all(v.version != version for v in record.versions)
            if is_new:
                db.execute(
                    "INSERT OR IGNORE INTO specs VALUES (?, ?, ?)", (tenant, version, canonical_json(spec))
                )
                db.execute("INSERT INTO versions VALUES (?, ?, ?, ?)", (tenant, record.id, version, now))
            db.execute(
                "UPDATE graders SET current = ?, name = ?, type = ? WHERE tenant = ? AND id = ?",
                (version, name, type_name, tenant, record.id),
            )
            record = self._find(db, tenant, record.id)
        self._specs[(tenant, version)] = spec
        return record, version, is_new

    def delete(self, tenant: str, grader_id: str) -> list[str]:
        """Remove a grader; returns its versions (their specs go unless another grader uses them)."""
        with self._use("IMMEDIATE") as db:
            versions = [v.version for v in self._find(db, tenant, grader_id).versions]
            db.execute(
                "DELETE FROM graders WHERE tenant = ? AND id = ?", (tenant, grader_id)
            )  # versions cascade
            db.execute(
                "DELETE FROM specs WHERE tenant = ? AND version NOT IN "
                "(SELECT version FROM versions WHERE tenant = ?)",
                (tenant, tenant),
            )
        for version in versions:
            self._specs.pop((tenant, version), None)
        return versions
