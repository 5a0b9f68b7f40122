"""The Evals API with the official SDK: evals (create, list, retrieve, update, delete), jsonl runs on
inline content and on uploaded files, result counts per criterion, output items by pass/fail,
pagination, what create refuses (OpenAI's error objects), and tenants."""

from __future__ import annotations

import json
import time

import openai
import pytest

pytestmark = pytest.mark.timeout(300)
EXACT = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}
FUZZY = {
    "type": "text_similarity",
    "name": "close",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "evaluation_metric": "fuzzy_match",
    "pass_threshold": 0.7,
}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
LINES = [
    {"item": {"answer": "paris"}, "sample": {"output_text": "paris"}},  # both pass
    {"item": {"answer": "london"}, "sample": {"output_text": "londn"}},  # exact fails, close passes
    {"item": {"answer": "rome"}, "sample": {"output_text": "oslo"}},  # both fail
]


def _eval(client, **extra):
    return client.evals.create(
        name="capitals",
        data_source_config={"type": "custom", "item_schema": SCHEMA, "include_sample_schema": True},
        testing_criteria=[EXACT, FUZZY],
        metadata={"team": "geo"},
        **extra,
    )


def wait_run(client, eval_id: str, run_id: str, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.evals.runs.retrieve(run_id, eval_id=eval_id)
        if run.status not in ("queued", "in_progress"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still {run.status}")


def test_eval_crud_and_tenants(client_a, client_b) -> None:
    created = _eval(client_a)
    assert created.id.startswith("eval_") and created.object == "eval"
    schema = created.data_source_config.schema_
    assert schema["properties"]["item"] == SCHEMA and schema["required"] == ["item", "sample"]
    assert [c.name for c in created.testing_criteria] == ["exact", "close"]
    assert client_a.evals.retrieve(created.id).name == "capitals"
    updated = client_a.evals.update(created.id, name="capitals v2", metadata={"team": "maps"})
    assert (updated.name, updated.metadata) == ("capitals v2", {"team": "maps"})
    second = _eval(client_a)
    page = client_a.evals.list(limit=1)
    assert len(page.data) == 1 and page.has_more
    assert [e.id for e in client_a.evals.list(limit=1, after=page.data[0].id).data] != [page.data[0].id]
    assert {created.id, second.id} <= {e.id for e in client_a.evals.list(limit=100).data}
    # tenant b sees none of it
    assert client_b.evals.list().data == []
    with pytest.raises(openai.NotFoundError):
        client_b.evals.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client_b.evals.runs.create(
            created.id, data_source={"type": "jsonl", "source": {"type": "file_content", "content": LINES}}
        )
    deleted = client_a.evals.delete(second.id)
    assert deleted.deleted and deleted.eval_id == second.id
    with pytest.raises(openai.NotFoundError):
        client_a.evals.retrieve(second.id)


def test_create_refuses_bad_evals_and_runs(client_a, service, tmp_path) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_a.evals.create(
            data_source_config={"type": "custom", "item_schema": SCHEMA},
            testing_criteria=[{**EXACT, "operation": "is"}],
        )
    assert caught.value.body["param"] == "testing_criteria[0]"
    with pytest.raises(openai.BadRequestError) as caught:
        client_a.evals.create(
            data_source_config={"type": "custom", "item_schema": SCHEMA}, testing_criteria=[EXACT, EXACT]
        )
    assert "twice" in caught.value.body["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        client_a.evals.create(
            data_source_config={"type": "custom", "item_schema": {"type": 3}}, testing_criteria=[EXACT]
        )
    assert caught.value.body["param"] == "data_source_config.item_schema"
    evaluation = _eval(client_a)
    runs = client_a.evals.runs
    with pytest.raises(openai.BadRequestError) as caught:  # an item the eval's schema refuses
        runs.create(
            evaluation.id,
            data_source={
                "type": "jsonl",
                "source": {"type": "file_content", "content": [{"item": {"answer": 3}}]},
            },
        )
    assert caught.value.body["code"] == "invalid_item" and "line 0" in caught.value.body["message"]
    with pytest.raises(openai.NotFoundError) as caught:  # a model the server does not have
        runs.create(
            evaluation.id,
            data_source={
                "type": "completions",
                "model": "gpt-4o",
                "source": {"type": "file_content", "content": LINES},
            },
        )
    assert caught.value.body["code"] == "model_not_found" and "tiny" in caught.value.body["message"]
    with pytest.raises(openai.NotFoundError) as caught:  # nor a fine-tuned model of this tenant
        runs.create(
            evaluation.id,
            data_source={
                "type": "completions",
                "model": "ft:tiny:x:123",
                "source": {"type": "file_content", "content": LINES},
            },
        )
    assert caught.value.body["param"] == "model"
    inside = service.data_dir / "http" / "jobs" / "ftjob-other" / "final"  # e.g. another tenant's model
    inside.mkdir(parents=True)
    (inside / "config.json").write_text("{}")
    with pytest.raises(openai.BadRequestError) as caught:
        runs.create(
            evaluation.id,
            data_source={"type": "completions", "model": str(inside),
                         "source": {"type": "file_content", "content": LINES}},
        )  # fmt: skip
    assert caught.value.body["param"] == "data_source.model" and "data dir" in caught.value.body["message"]
    # a model directory elsewhere is accepted (and this run is canceled at once)
    outside = tmp_path / "my-model"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    run = runs.create(
        evaluation.id,
        data_source={"type": "completions", "model": str(outside),
                     "source": {"type": "file_content", "content": LINES}},
    )  # fmt: skip
    assert run.model == str(outside)
    assert runs.cancel(run.id, eval_id=evaluation.id).status == "canceled"
    time.sleep(2)
    assert runs.retrieve(run.id, eval_id=evaluation.id).status == "canceled"
    assert runs.output_items.list(run.id, eval_id=evaluation.id).data == []
    with pytest.raises(openai.BadRequestError) as caught:
        runs.create(
            evaluation.id,
            data_source={"type": "responses", "source": {"type": "file_content", "content": LINES}},
        )
    assert caught.value.body["param"] == "data_source.type"
    with pytest.raises(openai.BadRequestError) as caught:
        runs.create(
            evaluation.id,
            data_source={"type": "completions", "model": "tiny", "source": {"type": "stored_completions"}},
        )
    assert caught.value.body["code"] == "unsupported_source"


def test_jsonl_run_counts_per_criterion_and_filters_items(client_a, client_b) -> None:
    evaluation = _eval(client_a)
    run = client_a.evals.runs.create(
        evaluation.id,
        name="inline",
        metadata={"k": "v"},
        data_source={"type": "jsonl", "source": {"type": "file_content", "content": LINES}},
    )
    assert run.id.startswith("evalrun_") and run.status == "queued" and run.eval_id == evaluation.id
    done = wait_run(client_a, evaluation.id, run.id)
    assert done.status == "completed", done.error
    assert done.result_counts.model_dump() == {"total": 3, "errored": 0, "failed": 2, "passed": 1}
    per = {r.testing_criteria: (r.passed, r.failed) for r in done.per_testing_criteria_results}
    assert per == {"exact": (1, 2), "close": (2, 1)}
    items = client_a.evals.runs.output_items
    failed = list(items.list(run.id, eval_id=evaluation.id, status="fail"))
    assert sorted(i.datasource_item["answer"] for i in failed) == ["london", "rome"]
    london = next(i for i in failed if i.datasource_item["answer"] == "london")
    assert london.object == "eval.run.output_item" and london.status == "fail"
    assert [(r.name, r.passed) for r in london.results] == [("exact", False), ("close", True)]
    assert london.sample.output[0].content == "londn"
    (passed,) = items.list(run.id, eval_id=evaluation.id, status="pass")
    assert passed.datasource_item == {"answer": "paris"} and all(r.score == 1.0 for r in passed.results[:1])
    assert items.retrieve(passed.id, eval_id=evaluation.id, run_id=run.id).id == passed.id
    page = items.list(run.id, eval_id=evaluation.id, limit=2)
    assert len(page.data) == 2 and page.has_more
    assert len(items.list(run.id, eval_id=evaluation.id, limit=2, after=page.data[-1].id).data) == 1
    with pytest.raises(openai.NotFoundError):
        client_b.evals.runs.output_items.list(run.id, eval_id=evaluation.id)
    # an uploaded evals file (lines {"item": ..., "sample": ...}) gives the same counts
    upload = client_a.files.create(
        file=("lines.jsonl", "".join(json.dumps(line) + "\n" for line in LINES).encode()), purpose="evals"
    )
    from_file = client_a.evals.runs.create(
        evaluation.id, data_source={"type": "jsonl", "source": {"type": "file_id", "id": upload.id}}
    )
    assert wait_run(client_a, evaluation.id, from_file.id).result_counts.passed == 1
    listed = client_a.evals.runs.list(evaluation.id)
    assert {r.id for r in listed.data} == {run.id, from_file.id}
    assert client_a.evals.runs.delete(from_file.id, eval_id=evaluation.id).deleted
    assert {r.id for r in client_a.evals.runs.list(evaluation.id).data} == {run.id}
    with pytest.raises(openai.BadRequestError):  # finished runs cannot be canceled
        client_a.evals.runs.cancel(run.id, eval_id=evaluation.id)


def test_chat_completions_refusals(client_a) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client_a.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as caught:
        client_a.chat.completions.create(model="tiny", messages=[])
    assert caught.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError) as caught:
        client_a.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}], stop=["x"]
        )
    assert caught.value.body["param"] == "stop"


def test_chat_with_the_base_model_plain_and_streamed(client_a) -> None:
    messages = [{"role": "user", "content": "Which item is last?\ng,x,w,a,k"}]
    reply = client_a.chat.completions.create(
        model="tiny", messages=messages, n=2, temperature=0, max_completion_tokens=4
    )
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-") and reply.model == "tiny"
    first, second = reply.choices
    assert first.message.role == "assistant" and first.message.content == second.message.content  # greedy
    assert first.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 5 and reply.usage.total_tokens == (
        reply.usage.prompt_tokens + reply.usage.completion_tokens
    )
    chunks = list(
        client_a.chat.completions.create(
            model="tiny", messages=messages, temperature=0, max_completion_tokens=4, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.message.content
    assert chunks[-1].usage.prompt_tokens == reply.usage.prompt_tokens


def test_a_run_survives_kill_9_of_the_server(tmp_path) -> None:
    """A completions run in progress when the server dies starts over at the restart and completes once."""
    from rftkit.grader_service.http.testing import ROOT, HttpService
    from rftkit.grader_service.testing import TOKEN_A

    tiny = ROOT / "examples" / "tiny" / "config.yaml"
    service = HttpService(
        tmp_path, tmp_path / "data", ["--sandbox", "process", "--base-model", f"tiny={tiny}"],
        env={"RFT_HTTP_CHAT_ENGINE": "transformers"},
    ).start()  # fmt: skip
    try:
        client = service.client(TOKEN_A)
        evaluation = client.evals.create(
            data_source_config={"type": "custom", "item_schema": {"type": "object"}}, testing_criteria=[EXACT]
        )
        content = [{"item": {"q": "Which item is first?\nl,v,h,a,k", "answer": "l"}},
                   {"item": {"q": "Which item is last?\ng,x,w,a,k", "answer": "k"}}]  # fmt: skip
        run = client.evals.runs.create(evaluation.id, data_source={
            "type": "completions", "model": "tiny", "source": {"type": "file_content", "content": content},
            "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{item.q}}"}]},
            "sampling_params": {"max_completion_tokens": 4},
        })  # fmt: skip
        deadline = time.monotonic() + 60
        while client.evals.runs.retrieve(run.id, eval_id=evaluation.id).status == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        service.kill9()
        service.start()
        done = wait_run(client, evaluation.id, run.id, timeout=240)
        assert done.status == "completed", (done.error, service.log_text()[-3000:])
        assert done.result_counts.total == 2 and done.result_counts.errored == 0
        items = list(client.evals.runs.output_items.list(run.id, eval_id=evaluation.id))
        assert sorted(i.datasource_item_id for i in items) == [0, 1]
        assert all(i.sample.model == "tiny" and i.sample.output for i in items)
    finally:
        service.stop()
