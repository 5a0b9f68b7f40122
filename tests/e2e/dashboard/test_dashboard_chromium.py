"""The dashboard in real headless Chromium against a real `rft serve` training a real tiny job.

Signs in through the form (the token lands in an HttpOnly cookie), follows the job's link from the
jobs list, watches the validation curve gain points without a reload (server-sent events + htmx),
pauses and resumes through the buttons and reads the status back from the API with the SDK, cancels,
then checks the eval chart's bars against summary.json and the pass/fail filter against
results.jsonl, and that a second tenant sees none of it. Screenshots go to the test's folder (and to
docs/img/ with RFT_DASHBOARD_SCREENSHOTS=1).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's chromium and chromium-driver; .ci/setup installs them"),
    pytest.mark.timeout(300),
]  # fmt: skip
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")
from rftkit.grader_service.http.testing import http_service  # noqa: E402
from rftkit.grader_service.testing import TOKEN_A, TOKEN_B  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
TINY = REPO / "examples" / "tiny"
DOCS_IMG = REPO / "docs" / "img"
GRADER = {"type": "string_check", "name": "exact_word", "input": "{{sample.output_text}}",
          "reference": "{{item.answer}}", "operation": "eq"}  # fmt: skip
FAST = {"rollout.engine": "transformers", "rollout.n": 4, "eval.max_items": 4, "trainer.threads": 1}
PAYLOAD = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def _lines(path: Path, count: int) -> bytes:
    return "".join(path.read_text().splitlines(keepends=True)[:count]).encode()


def click(browser: Any, element_id: str) -> None:
    """Click `#element_id`, found again when a live update replaced it between the find and the click."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(50):
        try:
            browser.find_element(By.ID, element_id).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError(f"#{element_id} was replaced again and again before it could be clicked")


def wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # an element swapped out between finding and reading it
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"no {what} after {timeout} s")


def eval_run(folder: Path) -> tuple[dict, list[dict]]:
    """An `rft eval`-shaped run folder: two models on 12 items, one answer an HTML payload."""
    folder.mkdir(parents=True)
    records = []
    for model, passing in (("tiny", {0, 3, 6, 9}), ("ft-tiny", {0, 1, 3, 4, 6, 7, 9})):
        for item in range(12):
            errors = ["python_grader_runtime_error"] if (model, item) == ("tiny", 11) else []
            passed = item in passing
            records.append({"model": model, "item_index": item, "sample_index": 0,
                            "input": [{"role": "user", "content": f"What word follows {item}?"}],
                            "reference": {"answer": f"w{item}"}, "reasoning": f"thinking about {item}",
                            "output": PAYLOAD if item == 5 else (f"w{item}" if passed else "nope"),
                            "reward": float(passed), "passed": passed, "errors": errors,
                            "valid": not errors})  # fmt: skip
    models = {}
    for model in ("tiny", "ft-tiny"):
        mine = [r for r in records if r["model"] == model]
        rate = sum(r["passed"] for r in mine) / len(mine)
        models[model] = {"n": len(mine), "mean_reward": rate,
                         "mean_reward_ci": [max(0, rate - 0.2), rate + 0.1], "pass_rate": rate,
                         "pass_rate_ci": [max(0, rate - 0.2), min(1, rate + 0.2)],
                         "samples_with_errors": sum(bool(r["errors"]) for r in mine)}  # fmt: skip
    summary = {"models": models, "grader": {"name": "exact_word", "type": "string_check", "rates": []}}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return summary, records


@pytest.fixture
def browser(tmp_path: Path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,1400",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver: Any, base: str, token: str) -> None:
    driver.delete_all_cookies()
    driver.get(base + "/")
    field = driver.find_element(By.NAME, "token")
    field.send_keys(token)
    field.submit()
    wait(lambda: driver.find_elements(By.CSS_SELECTOR, "[data-tenant]"), 15, "signed-in page")
    assert driver.execute_script("return document.cookie") == "", "the token cookie is HttpOnly"


def shot(driver: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 10_000
    if os.environ.get("RFT_DASHBOARD_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        (DOCS_IMG / f"{name}.png").write_bytes(path.read_bytes())


def api_status(client: Any, job_id: str) -> str:
    return client.fine_tuning.jobs.retrieve(job_id).status


def test_dashboard_in_chromium(tmp_path: Path, browser: Any) -> None:
    with http_service(tmp_path / "svc", "--base-model", f"tiny={TINY / 'config.yaml'}") as service:
        client = service.client(TOKEN_A)
        base = f"http://127.0.0.1:{service.http_port}"
        summary, records = eval_run(service.data_dir / "http" / "eval_runs" / "team-a" / "demo")
        train = client.files.create(file=("t.jsonl", _lines(TINY / "train.jsonl", 12)), purpose="fine-tune")
        valid = client.files.create(file=("v.jsonl", _lines(TINY / "valid.jsonl", 8)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(
            model="tiny", training_file=train.id, validation_file=valid.id, suffix="dash",
            method={"type": "reinforcement", "reinforcement": {"grader": GRADER, "hyperparameters": {
                "batch_size": 4, "n_epochs": 20, "eval_interval": 1, "eval_samples": 1}}},
            extra_body={"rftkit": {"overrides": {**FAST, "trainer.max_steps": 40}}},
        )  # fmt: skip

        sign_in(browser, base, TOKEN_A)
        browser.find_element(By.CSS_SELECTOR, f'a[href="/jobs/{job.id}"]').click()
        wait(lambda: job.id in browser.current_url, 10, "job page")
        browser.execute_script("window.__same_page = 1")

        def valid_points() -> int:
            return int(browser.find_element(By.ID, "curve").get_attribute("data-valid-points"))

        first = wait(valid_points, 150, "first validation point on the curve")
        wait(lambda: valid_points() > first, 90, "a new point on the curve")
        wait(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#curve svg circle")) == valid_points() >= 2,
             10, "one dot per validation point")  # fmt: skip
        assert browser.execute_script("return window.__same_page") == 1, "updated without a reload"

        click(browser, "btn-pause")
        wait(lambda: api_status(client, job.id) == "paused", 90, "paused in the API")
        wait(lambda: browser.find_element(By.ID, "job-status").get_attribute("data-status") == "paused", 15,
             "paused on the page")  # fmt: skip
        paused_at = valid_points()
        click(browser, "btn-resume")
        wait(lambda: api_status(client, job.id) in {"queued", "running"}, 15, "resumed in the API")
        wait(lambda: valid_points() > paused_at, 120, "training again after the resume")
        browser.execute_script("window.scrollTo(0, 0)")
        shot(browser, tmp_path, "dashboard-job")
        assert browser.execute_script("return window.__same_page") == 1

        click(browser, "btn-cancel")
        WebDriverWait(browser, 5).until(expected_conditions.alert_is_present())
        browser.switch_to.alert.accept()
        wait(lambda: api_status(client, job.id) == "cancelled", 15, "cancelled in the API")

        # the eval chart: one bar per model and metric, its numbers summary.json's
        browser.get(f"{base}/evals/demo")
        bars = browser.find_elements(By.CSS_SELECTOR, "#chart svg rect")
        assert len(bars) == 2 * 2
        titles = {b.find_element(By.TAG_NAME, "title").get_attribute("textContent") for b in bars}
        for model, metrics in summary["models"].items():
            lo, hi = metrics["pass_rate_ci"]
            assert f"{model} · Pass rate: {metrics['pass_rate']:.3f} (95% CI {lo:.3f}–{hi:.3f})" in titles
        shot(browser, tmp_path, "dashboard-evals")

        # the samples filter shows exactly the run's results
        browser.get(f"{base}/evals/demo/samples")
        assert browser.execute_script("return window.__pwned") is None

        def shown() -> list[tuple[str, int]]:
            rows = browser.find_elements(By.CSS_SELECTOR, "table.samples tr.sample")
            return [(r.get_attribute("data-model"), int(r.get_attribute("data-item"))) for r in rows]

        assert shown() == [(r["model"], r["item_index"]) for r in records]
        for status, model in (("fail", ""), ("fail", "tiny"), ("pass", "tiny"), ("error", "")):
            Select(browser.find_element(By.ID, "filter-model")).select_by_value(model)
            browser.find_element(By.ID, f"filter-{status}").click()
            keep = {"pass": lambda r: r["passed"], "fail": lambda r: not r["passed"],
                    "error": lambda r: bool(r["errors"])}[status]  # fmt: skip
            want = [(r["model"], r["item_index"]) for r in records
                    if (not model or r["model"] == model) and keep(r)]  # fmt: skip
            wait(lambda want=want: shown() == want, 10, f"{status}/{model or 'all'} rows")
            assert f"status={status}" in browser.current_url  # the filter is in the address (back works)
        assert browser.execute_script("return window.__pwned") is None
        browser.find_element(By.ID, "filter-all").click()
        Select(browser.find_element(By.ID, "filter-model")).select_by_value("")
        wait(lambda: len(shown()) == len(records), 10, "every row again")
        payload = browser.find_element(By.CSS_SELECTOR, 'tr.sample[data-model="tiny"][data-item="5"]')
        assert "<script>window.__pwned=2</script>" in payload.find_element(By.CSS_SELECTOR, "pre.answer").text
        payload.find_element(By.LINK_TEXT, "compare").click()
        wait(lambda: len(browser.find_elements(By.CSS_SELECTOR, "[data-side-model]")) == 2, 10,
             "side by side")  # fmt: skip

        # a second tenant sees none of the first tenant's jobs or runs
        sign_in(browser, base, TOKEN_B)
        assert job.id not in browser.page_source
        browser.get(f"{base}/jobs/{job.id}")
        assert "Not found" in browser.title
        browser.get(f"{base}/evals")
        assert "demo" not in browser.find_element(By.TAG_NAME, "main").text


EXACT = {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
         "reference": "{{item.answer}}", "operation": "eq"}  # fmt: skip
WORDS = ["w0", "w1", "w2", "w3", "w4", "w5", "", "w7"]  # "" has no answer: an error item


def api_eval(client: Any) -> tuple[str, list[Any]]:
    """An Evals API eval with two finished jsonl runs ("tiny" and "ft-tiny"), one answer an HTML payload."""
    evaluation = client.evals.create(
        name="next word", testing_criteria=[EXACT],
        data_source_config={"type": "custom", "item_schema": {"type": "object"},
                            "include_sample_schema": True},
    )  # fmt: skip
    runs = []
    for name, right in (("tiny", {0, 3}), ("ft-tiny", {0, 1, 3, 4, 7})):
        content = []
        for i, word in enumerate(WORDS):
            item = {"answer": word, "messages": [{"role": "user", "content": f"What word follows {i}?"}]}
            if not word:
                del item["answer"]
            output = PAYLOAD if i == 5 else (word if i in right else "nope")
            content.append({"item": item, "sample": {"output_text": output}})
        runs.append(client.evals.runs.create(evaluation.id, name=name, data_source={
            "type": "jsonl", "source": {"type": "file_content", "content": content}}))  # fmt: skip
    done = []
    for run in runs:
        done.append(wait(lambda run=run: (r := client.evals.runs.retrieve(run.id, eval_id=evaluation.id))
                         .status == "completed" and r, 120, f"run {run.name} completed"))  # fmt: skip
    return evaluation.id, done


def test_evals_api_pages_in_chromium(tmp_path: Path, browser: Any) -> None:
    """The Evals API's eval: chart numbers from result_counts, the pass / fail / error filter exactly
    `output_items.list(status=...)`, per run and for both, and two runs side by side on one item."""
    with http_service(tmp_path / "svc") as service:
        client = service.client(TOKEN_A)
        base = f"http://127.0.0.1:{service.http_port}"
        eval_id, runs = api_eval(client)
        sign_in(browser, base, TOKEN_A)
        browser.get(f"{base}/evals")
        browser.find_element(By.CSS_SELECTOR, f'a[href="/evals/{eval_id}"]').click()
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#chart svg rect"), 10, "the eval chart")
        titles = {b.find_element(By.TAG_NAME, "title").get_attribute("textContent")
                  for b in browser.find_elements(By.CSS_SELECTOR, "#chart svg rect")}  # fmt: skip
        for run in runs:
            rate = run.result_counts.passed / run.result_counts.total
            assert any(t.startswith(f"{run.name} · Pass rate: {rate:.3f} (95% CI") for t in titles), titles
        shot(browser, tmp_path, "dashboard-evals-api")

        browser.get(f"{base}/evals/{eval_id}/samples")
        assert browser.execute_script("return window.__pwned") is None

        def shown() -> list[str]:
            rows = browser.find_elements(By.CSS_SELECTOR, "table.samples tr.sample")
            return [r.get_attribute("data-output-item") for r in rows]

        items = client.evals.runs.output_items
        for status in ("fail", "pass", "error"):
            for run in [*runs, None]:
                Select(browser.find_element(By.ID, "filter-model")).select_by_value(run.id if run else "")
                browser.find_element(By.ID, f"filter-{status}").click()
                of = runs if run is None else [run]
                want = [i.id for r in of for i in items.list(r.id, eval_id=eval_id, status=status, limit=100)]
                key = (lambda x: x) if run is not None else sorted
                wait(lambda want=want, key=key: key(shown()) == key(want), 10, f"{status} rows")
                assert f"status={status}" in browser.current_url
        browser.find_element(By.ID, "filter-fail").click()
        Select(browser.find_element(By.ID, "filter-model")).select_by_value("")
        wait(lambda: len(shown()) >= 4, 10, "failed rows of both runs")
        shot(browser, tmp_path, "dashboard-samples")
        browser.find_element(By.ID, "filter-all").click()
        wait(lambda: len(shown()) == 2 * len(WORDS), 10, "every output item")
        assert browser.execute_script("return window.__pwned") is None
        payload = browser.find_element(
            By.CSS_SELECTOR, f'tr.sample[data-model="{runs[0].id}"][data-item="5"]'
        )
        assert "<script>window.__pwned=2</script>" in payload.find_element(By.CSS_SELECTOR, "pre.answer").text
        payload.find_element(By.LINK_TEXT, "compare").click()
        wait(
            lambda: len(browser.find_elements(By.CSS_SELECTOR, "[data-side-model]")) == 2, 10, "side by side"
        )
        sides = [
            s.get_attribute("data-side-model")
            for s in browser.find_elements(By.CSS_SELECTOR, "[data-side-model]")
        ]
        assert sides == [runs[0].id, runs[1].id]
        shot(browser, tmp_path, "dashboard-item")

        sign_in(browser, base, TOKEN_B)
        browser.get(f"{base}/evals")
        assert eval_id not in browser.page_source
        browser.get(f"{base}/evals/{eval_id}/samples")
        assert "Not found" in browser.title
