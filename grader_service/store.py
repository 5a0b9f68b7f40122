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

Quotas (`StoreQuotas`): graders, versions and stored bytes per tenant, checked inside the change's
transaction (so replicas sharing a database agree); deleting a grader frees what it held.
Specs read back are cached in memory up to SPEC_CACHE_BYTES, least recently used out first.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from .settings import ServiceSettings

SCHEMA_VERSION = 2
DB_NAME = "graders.db"
SPEC_CACHE_BYTES = 64 * 1024 * 1024
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
    tenant TEXT NOT NULL, version TEXT NOT NULL, spec TEXT NOT NULL, size INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, version)
);
"""
_MIGRATIONS = {  # from schema version N to N + 1
    1: [
        "ALTER TABLE specs ADD COLUMN size INTEGER NOT NULL DEFAULT 0",
        "UPDATE specs SET size = length(CAST(spec AS BLOB))",
    ],
}
_INSERT_SPEC = "INSERT OR IGNORE INTO specs (tenant, version, spec, size) VALUES (?, ?, ?, ?)"


class GraderNotFound(KeyError):
    """No such grader (or version) for this tenant."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "grader not found"


class DataDirInUse(RuntimeError):
    """Another server holds the data directory."""


class QuotaExceeded(Exception):
    """A change that would take a tenant past one of its store quotas; the message names it."""


@dataclass(frozen=True)
class StoreQuotas:
    """What one tenant may keep in the store (None: no limit)."""

    graders: int | None = None
    versions: int | None = None
    bytes: int | None = None

    @classmethod
    def of(cls, settings: ServiceSettings) -> StoreQuotas:
        return cls(
            graders=settings.max_graders_per_tenant,
            versions=settings.max_versions_per_tenant,
            bytes=settings.max_stored_bytes_per_tenant,
        )


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

    def __init__(
        self,
        data_dir: Path,
        *,
        shared: bool = False,
        busy_timeout_s: float = 30.0,
        quotas: StoreQuotas | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.quotas = quotas or StoreQuotas()
        self._lock = threading.Lock()
        self._lock_file: IO[str] | None = None if shared else self._acquire_dir_lock()
        self._specs = _SpecCache(SPEC_CACHE_BYTES)
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
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{path} has schema version {version}; this rftkit reads {SCHEMA_VERSION}")
            if version == 0:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                self._import_legacy(db)
            else:
                for step in range(version, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[step]:
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
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
                    text = spec_path.read_text()
                    db.execute(_INSERT_SPEC, (tenant, v.version, text, len(text.encode())))

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

    def resolve(self, tenant: str, grader_id: str, version: str | None = None) -> str:
        """The version `get` would resolve, from one or two indexed lookups (the grading path: no
        record is built); GraderNotFound the same way."""
        with self._use() as db:
            row = db.execute(
                "SELECT current FROM graders WHERE tenant = ? AND id = ?", (tenant, grader_id)
            ).fetchone()
            if row is None:
                raise GraderNotFound(f"no grader {grader_id!r} for this tenant")
            version = version or row["current"]
            known = db.execute(
                "SELECT 1 FROM versions WHERE tenant = ? AND grader_id = ? AND version = ?",
                (tenant, grader_id, version),
            ).fetchone()
        if known is None:
            raise GraderNotFound(f"grader {grader_id!r} has no version {version!r}")
        return version

    def spec(self, tenant: str, version: str) -> dict[str, Any]:
        """The stored spec of one of the tenant's versions (versions are content, so cached for good)."""
        key = (tenant, version)
        cached = self._specs.get(key)
        if cached is None:
            with self._use() as db:
                row = db.execute(
                    "SELECT spec, size FROM specs WHERE tenant = ? AND version = ?", key
                ).fetchone()
            if row is None:
                raise GraderNotFound(f"version {version!r} not found")
            cached = self._specs.put(key, json.loads(row["spec"]), row["size"])
        return cached

    def usage(self, tenant: str) -> tuple[int, int, int]:
        """What a tenant holds: (graders, versions, bytes of stored specs)."""
        with self._use() as db:
            return self._usage(db, tenant)

    @staticmethod
    def _usage(db: sqlite3.Connection, tenant: str) -> tuple[int, int, int]:
        queries = (
            "SELECT COUNT(*) FROM graders WHERE tenant = ?",
            "SELECT COUNT(*) FROM versions WHERE tenant = ?",
            "SELECT COALESCE(SUM(size), 0) FROM specs WHERE tenant = ?",
        )
        graders, versions, size = (db.execute(query, (tenant,)).fetchone()[0] for query in queries)
        return graders, versions, size

    def _check_quota(
        self, db: sqlite3.Connection, tenant: str, *, grader: bool, version: bool, spec_bytes: int
    ) -> None:
        """QuotaExceeded when one more grader / version, or `spec_bytes` more, take `tenant` past a quota."""
        quotas = self.quotas
        graders, versions, size = self._usage(db, tenant)
        hint = "; delete graders it no longer needs (rft graders delete) or ask for a larger quota"
        if grader and quotas.graders is not None and graders + 1 > quotas.graders:
            raise QuotaExceeded(
                f"tenant {tenant!r} stores {graders} graders, the most this server keeps per tenant "
                f"(rft serve --max-graders-per-tenant {quotas.graders}){hint}"
            )
        if version and quotas.versions is not None and versions + 1 > quotas.versions:
            raise QuotaExceeded(
                f"tenant {tenant!r} stores {versions} grader versions, the most this server keeps per "
                f"tenant (rft serve --max-versions-per-tenant {quotas.versions}){hint}"
            )
        if spec_bytes and quotas.bytes is not None and size + spec_bytes > quotas.bytes:
            raise QuotaExceeded(
                f"tenant {tenant!r} stores {size} bytes of graders; this one ({spec_bytes} bytes) would take "
                f"it past the {quotas.bytes} bytes this server keeps per tenant "
                f"(rft serve --max-stored-mb-per-tenant {quotas.bytes / (1024 * 1024):g}){hint}"
            )

    # -- changes ----------------------------------------------------------------------------

    def create(
        self, tenant: str, spec: dict[str, Any], grader_id: str | None = None
    ) -> tuple[GraderRecord, str, bool]:
        """Store a spec; returns (record, version, created_new_version).

        QuotaExceeded when a new grader, version or spec would take the tenant past its quotas.
        """
        text = canonical_json(spec)
        version = content_version(spec)
        name = str(spec.get("name", "grader"))
        type_name = str(spec.get("type", ""))
        now = _now_ms()
        with self._use("IMMEDIATE") as db:
            stored = db.execute(
                "SELECT 1 FROM specs WHERE tenant = ? AND version = ?", (tenant, version)
            ).fetchone()
            spec_size = len(text.encode())
            spec_bytes = 0 if stored is not None else spec_size
            if grader_id:
                record = self._find(db, tenant, grader_id)
                if all(v.version != version for v in record.versions):
                    self._check_quota(db, tenant, grader=False, version=True, spec_bytes=spec_bytes)
            else:
                holder = db.execute(
                    "SELECT grader_id FROM versions WHERE tenant = ? AND version = ? ORDER BY rowid LIMIT 1",
                    (tenant, version),
                ).fetchone()
                if holder is not None:  # same content again: one version
                    return self._find(db, tenant, holder["grader_id"]), version, False
                self._check_quota(db, tenant, grader=True, version=True, spec_bytes=spec_bytes)
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
                db.execute(_INSERT_SPEC, (tenant, version, text, spec_size))
                db.execute("INSERT INTO versions VALUES (?, ?, ?, ?)", (tenant, record.id, version, now))
            db.execute(
                "UPDATE graders SET current = ?, name = ?, type = ? WHERE tenant = ? AND id = ?",
                (version, name, type_name, tenant, record.id),
            )
            record = self._find(db, tenant, record.id)
        self._specs.put((tenant, version), spec, spec_size)
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
            self._specs.pop((tenant, version))
        return versions


class _SpecCache:
    """Specs by (tenant, version), least recently used out first beyond `max_bytes` (thread-safe)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], tuple[dict[str, Any], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> dict[str, Any] | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: tuple[str, str], spec: dict[str, Any], size: int) -> dict[str, Any]:
        with self._lock:
            self._drop(key)
            self._items[key] = (spec, size)
            self._bytes += size
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
            return spec

    def pop(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._drop(key)

    def _drop(self, key: tuple[str, str]) -> None:
        found = self._items.pop(key, None)
        if found is not None:
            self._bytes -= found[1]

    def __len__(self) -> int:
        return len(self._items)
