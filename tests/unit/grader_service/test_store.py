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
