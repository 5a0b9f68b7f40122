from __future__ import annotations

import json

import pytest
from rftkit.grader_service.store import DataDirInUse, GraderNotFound, GraderStore, content_version

SPEC = {
    "type": "string_check",
    "name": "eq",
    "operation": "eq",
    "input": "{{sample.output_text}}",
    "reference": "x",
}
SPEC2 = {**SPEC, "reference": "y"}


def test_same_content_is_one_version_and_survives_reopening(tmp_path) -> None:
    store = GraderStore(tmp_path)
    record, version, new = store.create("a", SPEC)
    assert new and version == content_version(SPEC)
    again, version_again, new_again = store.create(
        "a", dict(reversed(SPEC.items()))
    )  # key order is not content
    assert (again.id, version_again, new_again) == (record.id, version, False)
    updated, v2, _ = store.create("a", SPEC2, grader_id=record.id)
    assert updated.id == record.id and updated.current == v2 and len(updated.versions) == 2
    store.close()

    reopened = GraderStore(tmp_path)
    got, current = reopened.get("a", record.id)
    assert current == v2 and [v.version for v in got.versions] == [version, v2]
    assert reopened.get("a", record.id, version)[1] == version
    assert reopened.spec("a", version) == SPEC
    reopened.close()


def test_tenants_do_not_see_each_other(tmp_path) -> None:
    store = GraderStore(tmp_path)
    record, _, _ = store.create("a", SPEC)
    other, _, new = store.create("b", SPEC)  # same content, other tenant: its own grader
    assert new and other.id != record.id
    assert [r.id for r in store.list("b")] == [other.id]
    with pytest.raises(GraderNotFound):
        store.get("b", record.id)
    with pytest.raises(GraderNotFound):
        store.delete("b", record.id)
    assert store.delete("a", record.id) == [record.current]
    with pytest.raises(GraderNotFound):
        store.get("a", record.id)
    assert store.spec("b", other.current) == SPEC
    store.close()


def test_one_server_per_data_dir(tmp_path) -> None:
    store = GraderStore(tmp_path)
    with pytest.raises(DataDirInUse, match="in use"):
        GraderStore(tmp_path)
    store.close()
    GraderStore(tmp_path).close()


def test_replicas_given_the_same_upload_agree_on_the_id(tmp_path) -> None:
    one, two = GraderStore(tmp_path / "one"), GraderStore(tmp_path / "two")
    (first, v1, _), (second, v2, _) = one.create("a", SPEC), two.create("a", SPEC)
    assert (first.id, v1) == (second.id, v2)
    one.close()
    two.close()


def _upload_many(data_dir: str, grader_id: str, worker: int) -> list[str]:
    store = GraderStore(data_dir, shared=True)
    try:
        same = store.create("a", SPEC)[0].id  # every replica uploads the same content too
        versions = [store.create("a", {**SPEC, "reference": f"{worker}-{i}"}, grader_id=grader_id)[1]
                    for i in range(10)]  # fmt: skip
        assert same == grader_id
        return versions
    finally:
        store.close()


def test_replicas_share_one_database(tmp_path) -> None:
    """Several processes on one store: each change is one transaction, nothing lost or doubled."""
    import multiprocessing
    import sqlite3

    first = GraderStore(tmp_path, shared=True)
    record, v1, _ = first.create("a", SPEC)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        written = pool.starmap(_upload_many, [(str(tmp_path), record.id, w) for w in range(4)])
    got, current = first.get("a", record.id)
    versions = [v.version for v in got.versions]
    assert len(versions) == len(set(versions)) == 1 + 40 and versions[0] == v1
    assert set(versions[1:]) == {v for vs in written for v in vs} and current in versions[1:]
    assert [r.id for r in first.list("a")] == [record.id]
    assert first.spec("a", versions[-1])["reference"].count("-") == 1
    first.close()
    with sqlite3.connect(tmp_path / "graders.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_file_store_data_is_imported_with_its_ids(tmp_path) -> None:
    """A data directory of the earlier file store (index.json + specs/) opens with the same graders."""
    import json

    version = content_version(SPEC)
    (tmp_path / "specs" / "a").mkdir(parents=True)
    (tmp_path / "specs" / "a" / f"{version}.json").write_text(json.dumps(SPEC))
    record = {"id": "gr_old", "name": "eq", "type": "string_check", "created_unix_ms": 5, "current": version,
              "versions": [{"version": version, "created_unix_ms": 5}]}  # fmt: skip
    (tmp_path / "index.json").write_text(json.dumps({"format": 1, "tenants": {"a": {"gr_old": record}}}))
    store = GraderStore(tmp_path)
    got, current = store.get("a", "gr_old")
    assert (got.created_unix_ms, current) == (5, version) and store.spec("a", version) == SPEC
    assert store.create("a", SPEC)[:3:2] == (got, False)  # same content: the imported grader
    store.close()
    (tmp_path / "index.json").unlink()  # imported once: the database is the store now
    reopened = GraderStore(tmp_path)
    assert [r.id for r in reopened.list("a")] == ["gr_old"]
    reopened.close()


def test_quotas_per_tenant_refuse_and_delete_frees(tmp_path) -> None:
    from rftkit.grader_service.store import QuotaExceeded, StoreQuotas, canonical_json

    def size_of(spec: dict) -> int:
        return len(canonical_json(spec).encode())

    size = size_of(SPEC)
    v3 = {**SPEC, "reference": "v3"}
    store = GraderStore(tmp_path, quotas=StoreQuotas(graders=2, versions=3, bytes=4 * size))
    first, _, _ = store.create("a", SPEC)
    second, _, _ = store.create("a", SPEC2)
    with pytest.raises(QuotaExceeded, match=r"stores 2 graders.*--max-graders-per-tenant 2"):
        store.create("a", {**SPEC, "reference": "z"})
    assert store.create("b", {**SPEC, "reference": "z"})[2]  # another tenant's quota
    assert store.create("a", SPEC)[0].id == first.id  # content it has: costs nothing
    store.create("a", v3, grader_id=first.id)
    with pytest.raises(QuotaExceeded, match="--max-versions-per-tenant 3"):
        store.create("a", {**SPEC, "reference": "v4"}, grader_id=first.id)
    assert store.usage("a") == (2, 3, 2 * size + size_of(v3))
    store.delete("a", first.id)
    assert store.usage("a") == (1, 1, size)
    big = {**SPEC, "reference": "x" * (3 * size)}
    with pytest.raises(QuotaExceeded, match="would take it past"):
        store.create("a", big, grader_id=second.id)
    store.create("a", {**SPEC, "reference": "y" * size})  # under the byte quota: fine
    store.close()


def test_a_schema_1_store_gains_spec_sizes(tmp_path) -> None:
    import sqlite3

    store = GraderStore(tmp_path)
    record, version, _ = store.create("a", SPEC)
    store.close()
    with sqlite3.connect(tmp_path / "graders.db") as db:  # back to what rftkit wrote before sizes
        db.execute("ALTER TABLE specs DROP COLUMN size")
        db.execute("PRAGMA user_version = 1")
    reopened = GraderStore(tmp_path)
    assert reopened.usage("a") == (1, 1, len(json.dumps(SPEC, sort_keys=True, separators=(",", ":"))))
    assert reopened.get("a", record.id)[1] == version and reopened.spec("a", version) == SPEC
    reopened.close()


def test_the_spec_cache_is_bounded(tmp_path, monkeypatch) -> None:
    from rftkit.grader_service import store as store_module

    monkeypatch.setattr(store_module, "SPEC_CACHE_BYTES", 2000)
    store = GraderStore(tmp_path)
    versions = [store.create("a", {**SPEC, "reference": str(i) * 300})[1] for i in range(10)]
    assert len(store._specs) <= 6 and store._specs._bytes <= 2000
    assert store.spec("a", versions[0])["reference"] == "0" * 300  # read back from the database
    store.close()
