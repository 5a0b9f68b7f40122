"""The dashboard of a real `rft serve --http-port` over plain HTTP: sign-in, tenants, speed on 10,000
events and 10,000 samples (synthetic rows written into the server's own database and data dir), the
samples filter against results.jsonl (a run folder) and against the Evals API's output items (the
official SDK's `output_items.list(..., status=...)`), CSRF on the job buttons, and the graders page's
try box."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import httpx
import pytest
from rftkit.grader_service.client import GraderClient
from rftkit.grader_service.http.db import (
    CheckpointRow,
    Database,
    EvalRow,
    EvalRunRow,
    EventRow,
    JobRow,
    OutputItemRow,
    new_id,
)
from rftkit.grader_service.testing import TOKEN_A, TOKEN_B

STEPS = 10_000
SAMPLES = 10_000
pytestmark = pytest.mark.timeout(300)


def browser(service, token: str | None) -> httpx.Client:
    cookies = {"rft_token": token} if token else {}
    return httpx.Client(base_url=f"http://127.0.0.1:{service.http_port}", cookies=cookies, timeout=30)


def _event(step: int) -> dict:
    data = {"step": step, "train_reward_mean": min(1.0, step / STEPS + 0.1 * math.sin(step)),
            "train_grader_scores": {"exact": 0.5}, "train_errors": {"python_grader_runtime_error": step % 2},
            "train_samples": 16, "timing": {"sampling": 0.2, "grading": 0.05, "training": 0.1, "step": 0.4,
                                             "rollout_wait": 0.05}}  # fmt: skip
    if step % 10 == 0:
        data.update(valid_reward_mean=step / STEPS, valid_samples=8)
    return data


@pytest.fixture(scope="module")
def big_job(service) -> str:
    """A finished job of tenant team-a with 10,000 metrics events and a few checkpoints."""
    db = Database(f"sqlite:///{(service.data_dir / 'http' / 'rftkit.db').resolve()}")
    job_id = new_id("ftjob-")
    with db.session() as session:
        session.add(JobRow(id=job_id, tenant="team-a", model="tiny", status="succeeded",
                           training_file="file-x", validation_file="file-y", method={"type": "reinforcement"},
                           seed=1, created_at=1, overrides={}, run_dir="/nonexistent", steps_total=STEPS,
                           last_step=STEPS))  # fmt: skip
        session.flush()
        events = [EventRow(id=new_id("ftevent-"), job_id=job_id, created_at=2, message=f"Step {s}",
                           type="metrics", step=s, data=_event(s)) for s in range(STEPS)]  # fmt: skip
        session.add_all(events)
        for step, valid in ((100, 0.2), (5000, 0.9), (7000, 0.7), (9000, 0.8), (9990, 0.6)):
            session.add(CheckpointRow(id=new_id("ftckpt-"), job_id=job_id, step=step, path="/x",
                                      metrics={"step": step, "valid_reward_mean": valid}, created_at=3,
                                      model_name=f"ft:tiny:x:{step}", deleted=step == 100))  # fmt: skip
    db.close()
    return job_id


@pytest.fixture(scope="module")
def big_eval(service) -> tuple[str, list[dict]]:
    """An eval run folder of tenant team-a: 10,000 samples of two models."""
    run = service.data_dir / "http" / "eval_runs" / "team-a" / "big"
    run.mkdir(parents=True)
    records = []
    for i in range(SAMPLES):
        model = "base" if i % 2 else "tuned"
        passed = (i % 3 == 0) if model == "base" else (i % 3 != 1)
        errors = ["python_grader_runtime_error"] if i % 97 == 0 else []
        records.append({"model": model, "item_index": i // 2, "sample_index": 0,
                        "input": [{"role": "user", "content": f"question {i // 2} <b>bold</b>"}],
                        "reference": {"answer": str(i // 2)}, "output": f"answer {i}",
                        "reward": float(passed), "errors": errors, "passed": passed,
                        "valid": not errors})  # fmt: skip
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    models = {}
    for model in ("tuned", "base"):
        mine = [r for r in records if r["model"] == model]
        rate = sum(r["passed"] for r in mine) / len(mine)
        models[model] = {"n": len(mine), "mean_reward": rate, "mean_reward_ci": [rate - 0.01, rate + 0.01],
                         "pass_rate": rate, "pass_rate_ci": [rate - 0.01, rate + 0.01],
                         "samples_with_errors": sum(bool(r["errors"]) for r in mine)}  # fmt: skip
    (run / "summary.json").write_text(json.dumps({"models": models, "grader": {"name": "exact",
                                                  "type": "string_check", "rates": []}}))  # fmt: skip
    return "big", records


EXACT = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
         "reference": "{{item.answer}}", "operation": "eq"}  # fmt: skip
FUZZY = {"type": "text_similarity", "name": "close", "input": "{{sample.output_text}}",
         "reference": "{{item.answer}}", "evaluation_metric": "fuzzy_match",
         "pass_threshold": 0.7}  # fmt: skip
ANSWERS = ["paris", "london", "rome", "oslo", "<b>bern</b>", "", "lima"]  # "" has no answer: an error


def _api_lines(outputs: list[str]) -> list[dict]:
    lines = []
    for answer, output in zip(ANSWERS, outputs, strict=True):
        item = {"answer": answer, "messages": [{"role": "user", "content": f"Capital {answer}?"}]}
        if not answer:
            del item["answer"]
        lines.append({"item": item, "sample": {"output_text": output}})
    return lines


def wait_run(client, eval_id: str, run_id: str, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.evals.runs.retrieve(run_id, eval_id=eval_id)
        if run.status not in ("queued", "in_progress"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still {run.status}")


@pytest.fixture(scope="module")
def api_eval(client_a) -> tuple[str, list]:
    """An eval of the Evals API (two criteria) with two finished jsonl runs: two "models"."""
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    evaluation = client_a.evals.create(
        name="capitals <i>dash</i>", testing_criteria=[EXACT, FUZZY],
        data_source_config={"type": "custom", "item_schema": schema, "include_sample_schema": True},
    )  # fmt: skip
    runs = []
    answers = {"base": ["paris", "londn", "oslo", "oslo", "bern", "x", "lima"],
               "tuned": ["paris", "london", "rome", "osl", "<b>bern</b>", "y", "peru"]}  # fmt: skip
    for name, outputs in answers.items():
        source = {"type": "file_content", "content": _api_lines(outputs)}
        runs.append(client_a.evals.runs.create(evaluation.id, name=name,
                                               data_source={"type": "jsonl", "source": source}))  # fmt: skip
    done = [wait_run(client_a, evaluation.id, r.id) for r in runs]
    assert all(r.status == "completed" for r in done), [r.error for r in done]
    return evaluation.id, done


@pytest.fixture(scope="module")
def big_api_eval(service) -> tuple[str, list[str]]:
    """An Evals API eval of tenant team-a with two runs of 5,000 output items each (rows written
    straight into the server's database, as the worker would)."""
    db = Database(f"sqlite:///{(service.data_dir / 'http' / 'rftkit.db').resolve()}")
    eval_id, run_ids = new_id("eval_"), [new_id("evalrun_"), new_id("evalrun_")]
    with db.session() as session:
        session.add(EvalRow(id=eval_id, tenant="team-a", name="big api", testing_criteria=[EXACT],
                            data_source_config={"type": "custom"}, created_at=1, deleted=False))  # fmt: skip
        session.flush()
        for r, run_id in enumerate(run_ids):
            statuses = ["pass" if (i + r) % 3 else "fail" for i in range(SAMPLES // 2)]
            for i in range(0, SAMPLES // 2, 97):
                statuses[i] = "error"
            counts = {"total": len(statuses), "passed": statuses.count("pass"),
                      "failed": statuses.count("fail"), "errored": statuses.count("error")}  # fmt: skip
            session.add(EvalRunRow(id=run_id, eval_id=eval_id, tenant="team-a", name=f"run{r}", model=f"m{r}",
                                   status="completed", data_source={}, result_counts=counts, created_at=2,
                                   finished_at=3, run_dir="/nonexistent", deleted=False))  # fmt: skip
            session.flush()
            session.add_all(
                OutputItemRow(id=new_id("outputitem_"), run_id=run_id, eval_id=eval_id, status=s,
                              datasource_item_id=i, datasource_item={"answer": str(i)}, created_at=4,
                              results=[{"name": "exact", "passed": s == "pass", "score": float(s == "pass"),
                                        "errors": ["python_grader_runtime_error"] if s == "error" else []}],
                              sample={"input": [{"role": "user", "content": f"question {i}"}],
                                      "output": [{"role": "assistant", "content": f"answer {i} of m{r}"}]})
                for i, s in enumerate(statuses)
            )  # fmt: skip
    db.close()
    return eval_id, run_ids


def _shown_items(html: str) -> list[str]:
    return re.findall(r'data-output-item="(outputitem_\w+)"', html)


def test_sign_in_keeps_the_token_in_an_httponly_cookie(service) -> None:
    with browser(service, None) as anonymous:
        page = anonymous.get("/")
        assert page.status_code == 200 and re.search(r'<input[^>]*name="token"', page.text)
        assert "ftjob-" not in page.text
        refused = anonymous.post("/signin", data={"token": "not-a-token"})
        assert refused.status_code == 401 and 'name="token"' in refused.text
        signed = anonymous.post("/signin", data={"token": TOKEN_A, "next": "/"})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"].lower()
        assert "rft_token=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert anonymous.get("/").text.count("data-tenant>team-a<") == 1
        assert "Content-Security-Policy" in anonymous.get("/").headers
        static = anonymous.get("/static/htmx.min.js")
        assert static.status_code == 200 and static.headers["content-type"].startswith("text/javascript")


def test_job_page_of_10000_events_opens_in_under_a_second(service, big_job) -> None:
    with browser(service, TOKEN_A) as a:
        begin = time.perf_counter()
        page = a.get(f"/jobs/{big_job}")
        first = time.perf_counter() - begin
        assert page.status_code == 200, page.text[:500]
        assert first < 1.0, f"first open took {first:.2f} s"
        assert f'data-train-points="{STEPS}"' in page.text
        assert f'data-valid-points="{STEPS // 10}"' in page.text
        drawn = int(re.search(r'data-drawn="(\d+)"', page.text).group(1))
        assert drawn <= 800, "curves are downsampled"
        assert "<svg" in page.text and page.text.count('class="event ') == 50, "events come 50 a page"
        # newest first: 9990 (0.6) is kept but not among the best; 9000 0.8, 7000 0.7, 5000 0.9
        assert [int(s) for s in re.findall(r'data-best="(\d)"', page.text)] == [2, 3, 1]
        assert re.search(r'data-step="5000" data-best="1"', page.text)
        assert 'data-kind="python_grader_runtime_error"' in page.text
        begin = time.perf_counter()
        assert a.get(f"/jobs/{big_job}/live").status_code == 200
        assert time.perf_counter() - begin < 0.5, "a live refresh folds only what is new"
        older = re.search(r'hx-get="(/jobs/[^"]+/events\?before=\d+)"', page.text).group(1)
        rows = a.get(older.replace("&amp;", "&"))
        assert rows.text.count('class="event ') == 50 and "Older events" in rows.text
        listing = a.get("/")
        assert f'href="/jobs/{big_job}"' in listing.text and 'data-value="0.9"' in listing.text


def test_a_second_tenant_sees_none_of_the_first_tenants_jobs_or_evals(service, big_job, big_eval) -> None:
    with browser(service, TOKEN_B) as b:
        assert big_job not in b.get("/").text
        assert b.get(f"/jobs/{big_job}").status_code == 404
        assert b.get(f"/jobs/{big_job}/live").status_code == 404
        assert b.get(f"/jobs/{big_job}/events").status_code == 404
        assert b.get(f"/jobs/{big_job}/stream").status_code == 404
        assert big_eval[0] not in b.get("/evals").text
        assert b.get(f"/evals/{big_eval[0]}").status_code == 404
        assert b.get(f"/evals/{big_eval[0]}/samples").status_code == 404


def test_eval_of_10000_samples_pages_and_filters_like_its_results(service, big_eval) -> None:
    name, records = big_eval
    with browser(service, TOKEN_A) as a:
        begin = time.perf_counter()
        page = a.get(f"/evals/{name}/samples")
        assert time.perf_counter() - begin < 1.0
        assert page.text.count('<tr class="sample"') == 50 and f'data-matched="{SAMPLES}"' in page.text
        assert "&lt;b&gt;bold&lt;/b&gt;" in page.text and "<b>bold</b>" not in page.text  # autoescaped
        for status, want in (("pass", [r for r in records if r["passed"]]),
                             ("fail", [r for r in records if not r["passed"]]),
                             ("error", [r for r in records if r["errors"]])):  # fmt: skip
            for model in ("", "base"):
                chosen = [r for r in want if not model or r["model"] == model]
                got = a.get(f"/evals/{name}/samples", params={"status": status, "model": model})
                assert f'data-matched="{len(chosen)}"' in got.text, (status, model)
                shown = re.findall(r'data-model="(\w+)" data-item="(\d+)"', got.text)
                assert shown == [(r["model"], str(r["item_index"])) for r in chosen[:50]]
        fragment = a.get(f"/evals/{name}/samples", params={"q": "question 4321 "},
                         headers={"HX-Request": "true", "HX-Target": "samples"})  # fmt: skip
        assert "<html" not in fragment.text and 'data-matched="2"' in fragment.text
        last = a.get(f"/evals/{name}/samples", params={"page": 200})
        assert 'data-page="200"' in last.text and last.text.count('<tr class="sample"') == 50
        chart = a.get(f"/evals/{name}")
        assert chart.text.count("<rect") >= 4 and 'data-metric="pass_rate"' in chart.text
        side = a.get(f"/evals/{name}/items/7", params={"a": "tuned", "b": "base"})
        assert side.text.count("data-side-model=") == 2


def test_api_eval_filters_show_exactly_the_apis_output_items(service, client_a, client_b, api_eval) -> None:
    eval_id, runs = api_eval
    items = client_a.evals.runs.output_items
    with browser(service, TOKEN_A) as a, browser(service, TOKEN_B) as b:
        listing = a.get("/evals")
        assert (
            f'href="/evals/{eval_id}"' in listing.text and "capitals &lt;i&gt;dash&lt;/i&gt;" in listing.text
        )
        assert eval_id not in b.get("/evals").text
        assert b.get(f"/evals/{eval_id}").status_code == 404
        assert b.get(f"/evals/{eval_id}/samples").status_code == 404
        for status in ("pass", "fail", "error"):
            every = []
            for run in runs:
                want = [i.id for i in items.list(run.id, eval_id=eval_id, status=status, limit=100)]
                got = a.get(f"/evals/{eval_id}/samples", params={"status": status, "model": run.id})
                assert f'data-matched="{len(want)}"' in got.text, (status, run.name)
                assert _shown_items(got.text) == want, (status, run.name)
                every += want
            both = a.get(f"/evals/{eval_id}/samples", params={"status": status})
            assert sorted(_shown_items(both.text)) == sorted(every), status
        assert any(r.result_counts.errored for r in runs), "the item without an answer is an error"
        page = a.get(f"/evals/{eval_id}/samples")
        assert len(_shown_items(page.text)) == sum(r.result_counts.total for r in runs)
        assert "&lt;b&gt;bern&lt;/b&gt;" in page.text and "<b>bern</b>" not in page.text  # autoescaped
        assert 'data-criterion="close"' in page.text and "Capital paris?" in page.text
        found = a.get(f"/evals/{eval_id}/samples", params={"q": "londn"})
        assert _shown_items(found.text) == [
            i.id for i in items.list(runs[0].id, eval_id=eval_id) if i.sample.output[0].content == "londn"
        ]
        chart = a.get(f"/evals/{eval_id}")
        for run in runs:
            counts = run.result_counts
            want = round(counts.passed / counts.total, 6)
            got = re.search(
                rf'data-model="{run.id}" data-metric="pass_rate" data-value="([\d.]+)"', chart.text
            )
            assert got and float(got.group(1)) == want, run.name
            assert re.search(rf'data-model="{run.id}" data-metric="criterion:close"', chart.text)
            assert f"{run.name} · Pass rate: {want:.3f} (95% CI" in chart.text
        side = a.get(f"/evals/{eval_id}/items/1", params={"a": runs[0].id, "b": runs[1].id})
        assert re.findall(r'data-side-model="(\w+)"', side.text) == [runs[0].id, runs[1].id]
        assert "londn" in side.text and "london" in side.text


def test_api_eval_of_10000_items_pages_in_under_a_second(service, client_a, big_api_eval) -> None:
    eval_id, run_ids = big_api_eval
    items = client_a.evals.runs.output_items
    with browser(service, TOKEN_A) as a:
        for params in ({}, {"status": "fail", "model": run_ids[1]}, {"page": 200}, {"q": "question 4321"}):
            begin = time.perf_counter()
            page = a.get(f"/evals/{eval_id}/samples", params=params)
            took = time.perf_counter() - begin
            assert page.status_code == 200 and took < 1.0, (params, took)
        assert f'data-matched="{SAMPLES}"' in a.get(f"/evals/{eval_id}/samples").text
        for status in ("pass", "fail", "error"):
            got = a.get(f"/evals/{eval_id}/samples", params={"status": status, "model": run_ids[0]})
            want = items.list(run_ids[0], eval_id=eval_id, status=status, limit=50).data
            assert _shown_items(got.text) == [i.id for i in want], status
        last = a.get(f"/evals/{eval_id}/samples", params={"page": 200})
        assert 'data-page="200"' in last.text and len(_shown_items(last.text)) == 50
        begin = time.perf_counter()
        chart = a.get(f"/evals/{eval_id}")
        assert time.perf_counter() - begin < 2.0 and chart.text.count("<rect") >= 4
        assert 'data-metric="mean_reward"' in chart.text


def test_job_buttons_need_the_pages_csrf_value(service, big_job) -> None:
    with browser(service, TOKEN_A) as a:
        assert a.post(f"/jobs/{big_job}/cancel", data={}).status_code == 403
        assert a.post(f"/jobs/{big_job}/cancel", data={"csrf": "forged"}).status_code == 403
        csrf = re.search(r'name="csrf" value="(\w+)"', a.get(f"/jobs/{big_job}").text).group(1)
        answer = a.post(f"/jobs/{big_job}/cancel", data={"csrf": csrf}, headers={"HX-Request": "true"})
        assert answer.status_code == 200 and "already succeeded" in answer.text  # the API's own rule


def test_graders_page_lists_versions_and_tries_a_grader(service) -> None:
    spec = {"type": "string_check", "name": "dash_exact", "input": "{{sample.output_text}}",
            "reference": "{{item.answer}}", "operation": "eq"}  # fmt: skip
    with GraderClient(f"127.0.0.1:{service.grpc_port}", TOKEN_A) as grpc:
        grader_id, version = grpc.create_grader(spec)
    with browser(service, TOKEN_A) as a, browser(service, TOKEN_B) as b:
        page = a.get("/graders")
        assert grader_id in page.text and version[:12] in page.text
        assert grader_id not in b.get("/graders").text
        chosen = a.get("/graders", params={"grader": grader_id})
        assert "dash_exact" in chosen.text
        csrf = re.search(r'name="csrf" value="(\w+)"', page.text).group(1)
        form = {"csrf": csrf, "spec": json.dumps(spec), "sample": "42", "item": '{"answer": "42"}'}
        result = a.post("/graders/try", data=form, headers={"HX-Request": "true"})
        assert 'data-value="1.0"' in result.text, result.text
        bad = a.post("/graders/try", data={**form, "spec": "{"}, headers={"HX-Request": "true"})
        assert "Not valid JSON" in bad.text
        assert a.post("/graders/try", data={**form, "csrf": ""}).status_code == 403


def test_templates_and_static_files_ship_with_the_package() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[3]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "rftkit.grader_service.http.dashboard" in config["packages"]
    assert config["package-data"]["rftkit.grader_service.http.dashboard"] == ["templates/*", "static/*"]
    assert (root / "grader_service/http/dashboard/static/htmx.LICENSE.txt").read_text().startswith("htmx.org")
