from __future__ import annotations

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
