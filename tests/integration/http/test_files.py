"""Files with the official SDK: upload, validation by line, list/pagination, content, delete, tenants."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import openai
import pytest
from rftkit.grader_service.http.testing import http_service

ROOT = Path(__file__).resolve().parents[3]
TRAIN = ROOT / "examples" / "tiny" / "train.jsonl"


def test_upload_retrieve_content_delete(service, client_a) -> None:
    created = client_a.files.create(file=TRAIN.open("rb"), purpose="fine-tune")
    assert created.id.startswith("file-") and created.purpose == "fine-tune" and created.status == "processed"
    assert created.bytes == TRAIN.stat().st_size and created.filename == "train.jsonl"
    assert client_a.files.retrieve(created.id).model_dump() == created.model_dump()
    assert client_a.files.content(created.id).read() == TRAIN.read_bytes()
    # content-addressed on disk: stored once under its SHA-256, however often it is uploaded
    digest = hashlib.sha256(TRAIN.read_bytes()).hexdigest()
    blob = service.data_dir / "http" / "files" / digest[:2] / digest
    again = client_a.files.create(file=TRAIN.open("rb"), purpose="fine-tune")
    assert blob.is_file() and again.id != created.id
    assert client_a.files.delete(created.id).deleted and blob.is_file()  # still used by `again`
    with pytest.raises(openai.NotFoundError) as caught:
        client_a.files.retrieve(created.id)
    assert caught.value.body["code"] == "not_found"
    client_a.files.delete(again.id)
    assert not blob.exists()


def test_fine_tune_file_errors_name_the_lines(client_a) -> None:
    good = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "answer": "a"})
    lines = [
        good,
        "{not json",
        good,
        json.dumps({"messages": [{"role": "assistant", "content": "x"}]}),
        "[1]",
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client_a.files.create(file=("bad.jsonl", "\n".join(lines).encode()), purpose="fine-tune")
    message = caught.value.body["message"]
    assert "3 bad line(s)" in message and "line 2: not JSON" in message
    assert "line 4: messages" in message and "line 5: expected a JSON object" in message
    assert "line 1" not in message and "line 3" not in message
    assert caught.value.body["code"] == "invalid_file_format" and caught.value.body["param"] == "file"
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client_a.files.create(file=("x.jsonl", good.encode()), purpose="batch")
    evals = client_a.files.create(file=("items.jsonl", b'{"item": {"q": 1}}\n'), purpose="evals")
    assert evals.purpose == "evals"


def test_list_paginates_newest_first(client_a) -> None:
    ids = [
        client_a.files.create(file=(f"p{i}.jsonl", b'{"item": {"i": %d}}\n' % i), purpose="evals").id
        for i in range(5)
    ]
    first = client_a.files.list(purpose="evals", limit=2)
    assert [f.id for f in first.data] == ids[::-1][:2] and first.has_more
    everything = [f.id for f in client_a.files.list(purpose="evals", limit=2)]  # the SDK follows `after`
    assert everything[:5] == ids[::-1] and len(everything) == len(set(everything))
    oldest_first = [f.id for f in client_a.files.list(purpose="evals", order="asc")]
    assert oldest_first[-5:] == ids


def test_a_second_tenant_sees_none_of_the_first_tenants_files(client_a, client_b) -> None:
    mine = client_a.files.create(file=("secret.jsonl", b'{"item": {"s": 1}}\n'), purpose="evals")
    assert mine.id not in [f.id for f in client_b.files.list()]
    for call in (client_b.files.retrieve, client_b.files.content, client_b.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(mine.id)
    assert client_a.files.retrieve(mine.id).id == mine.id


def test_files_survive_a_restart(tmp_path) -> None:
    with http_service(tmp_path / "svc", "--sandbox", "process") as service:
        created = service.client().files.create(file=("keep.jsonl", b'{"item": {"k": 1}}\n'), purpose="evals")
        service.kill9()
        service.start()
        assert service.client().files.content(created.id).read() == b'{"item": {"k": 1}}\n'
