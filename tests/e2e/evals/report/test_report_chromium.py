"""`rft report` opened in real headless Chromium: numbers against the run files, the filters, no network.

An eval of three models (one answers with HTML and script payloads) is run against the
OpenAI-compatible stub from tests/integration/evals, a short real `rft train` run of a tiny
model (transformers rollouts, a fuzzy-match grader) gives a training run folder, and the
report of both is driven through chromedriver.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver); "
    ".ci/setup installs them",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

REPO = Path(__file__).resolve().parents[4]
EVAL_TESTS = REPO / "tests" / "integration" / "evals" / "test_eval_endpoint.py"
RFT = Path(sys.executable).with_name("rft")
PAYLOAD = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


ev = SimpleNamespace(**runpy.run_path(str(EVAL_TESTS)))  # the eval test's stub models and data


def evil(body: dict[str, Any]) -> tuple[str, str | None]:
    case = ev.case_of(body)
    genes = [*ev.ranking(case, 1 if case % 2 else None), PAYLOAD]
    return json.dumps({"genes": genes}), f"</pre></details>{PAYLOAD} case {case}"


def make_runs(tmp_path: Path) -> tuple[Path, Path]:
    data, grader = ev.write_inputs(tmp_path)
    run = tmp_path / "eval-run"
    with ev.openai_stub.serve({"good": ev.good, "weak": ev.weak, "evil": evil}) as stub:
        args = ["eval", "--data", str(data), "--grader", str(grader), "--output-dir", str(run)]
        for name in ("good", "weak", "evil"):
            args += ["--model", f"{name}={stub.url}"]
        proc = subprocess.run([str(RFT), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    training = train_tiny(tmp_path)
    return run, training


def train_tiny(tmp_path: Path) -> Path:
    """A real `rft train` output folder: 12 GRPO steps of a tiny model, validated every 3 steps."""
    from rftkit.trainer.tiny_model import build_tiny_model

    tiny = REPO / "examples" / "tiny"
    lines = [json.loads(line) for line in (tiny / "train.jsonl").read_text().splitlines()[:400]]
    model = build_tiny_model(
        tmp_path / "tiny-model", [f"{x['messages'][-1]['content']} {x['answer']}" for x in lines]
    )
    config = {
        "model": {"path": str(model)},
        "data": {"train_file": str(tiny / "train.jsonl"), "valid_file": str(tiny / "valid.jsonl")},
        "grader": {"spec": {"type": "text_similarity", "name": "fuzzy", "input": "{{sample.output_text}}",
                            "reference": "{{item.answer}}", "evaluation_metric": "fuzzy_match"}},
        "rollout": {"engine": "transformers", "n": 4, "max_tokens": 4},
        "hyperparameters": {"batch_size": 4, "eval_interval": 3, "eval_samples": 1},
        "trainer": {"max_steps": 12, "threads": 1},
    }  # fmt: skip
    (tmp_path / "train.yaml").write_text(json.dumps(config))  # JSON is YAML
    training = tmp_path / "train-run"
    proc = subprocess.run([str(RFT), "train", str(tmp_path / "train.yaml"), "--output-dir", str(training),
                           "--no-progress"], capture_output=True, text=True, timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (training / "summary.json").is_file()  # the trainer's own summary sits beside events.jsonl
    return training


@pytest.fixture
def browser(tmp_path: Path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1440,1800",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def visible_rows(driver: Any) -> list[Any]:
    return [
        r for r in driver.find_elements(By.CSS_SELECTOR, "table.samples tbody tr.sample") if r.is_displayed()
    ]


def test_report_in_chromium(tmp_path: Path, browser: Any) -> None:
    run, training = make_runs(tmp_path)
    report = tmp_path / "report.html"
    proc = subprocess.run([str(RFT), "report", str(run), str(training), "-o", str(report)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run / "summary.json").read_text())
    results = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]

    browser.get(report.as_uri())
    assert browser.execute_script("return window.__pwned") is None  # payloads stayed text

    # Only the file itself was requested: no network, no other files.
    requested = [
        json.loads(entry["message"])["message"]["params"]["request"]["url"]
        for entry in browser.get_log("performance")
        if '"Network.requestWillBeSent"' in entry["message"]
    ]
    page_requests = [u for u in requested if not u.startswith(("chrome:", "about:", "data:"))]  # not fetches
    assert page_requests == [report.as_uri()], page_requests

    # Summary table: every number equals summary.json and what results.jsonl gives when recounted.
    for name, metrics in summary["models"].items():
        lines = [r for r in results if r["model"] == name]
        recount = {
            "n": len(lines),
            "mean_reward": sum(r["reward"] for r in lines) / len(lines),
            "pass_rate": sum(r["passed"] for r in lines) / len(lines),
            "top1": sum(r["top1"] for r in lines) / len(lines),
            "top5": sum(r["top5"] for r in lines) / len(lines),
            "topmax": sum(r["topmax"] for r in lines) / len(lines),
            "samples_with_errors": sum(bool(r["errors"]) for r in lines),
        }
        for metric, want in recount.items():
            cell = browser.find_element(
                By.CSS_SELECTOR, f'table.summary:not(.best) td[data-model="{name}"][data-metric="{metric}"]'
            )
            assert float(cell.get_attribute("data-value")) == pytest.approx(want, abs=1e-6), (name, metric)
            assert float(cell.get_attribute("data-value")) == pytest.approx(metrics[metric], abs=1e-6)
            if metric == "n":
                assert cell.text == str(want)  # the cell's text is the number alone
            elif metric != "samples_with_errors":
                assert cell.text == f"{want:.3f}"
                lo, hi = metrics[f"{metric}_ci"]  # the CI is drawn under it (CSS, from an attribute)
                note = browser.execute_script(
                    "return getComputedStyle(arguments[0], '::after').content",
                    cell.find_element(By.CSS_SELECTOR, ".ci"),
                )
                assert note == f'"{lo:.3f} – {hi:.3f}"'
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart svg rect")) == 3 * 5  # 3 models x 5 metrics
    assert len(browser.find_elements(By.CSS_SELECTOR, "#distribution svg rect")) == 3 * 6  # rank buckets

    # Training curves and their table: values from the trainer's events.jsonl.
    events = [json.loads(line) for line in (training / "events.jsonl").read_text().splitlines()]
    valid = [(e["step"], e["valid_reward_mean"]) for e in events if "valid_reward_mean" in e]
    assert [step for step, _ in valid] == [0, 3, 6, 9, 12]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#training svg circle")) == len(valid)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#training svg path")) == 2  # train and valid reward
    best = max(valid, key=lambda p: (p[1], p[0]))
    for metric, want in (("first_valid", valid[0][1]), ("best_valid", best[1]), ("last_valid", valid[-1][1])):
        cell = browser.find_element(By.CSS_SELECTOR, f'table.training td[data-metric="{metric}"]')
        assert float(cell.get_attribute("data-value")) == pytest.approx(want, abs=1e-6), metric
    assert f"(step {best[0]})" in browser.find_element(By.CSS_SELECTOR, "table.training").text
    assert f"final model {training / 'final'}" in browser.find_element(By.ID, "runs").text

    # The sample table and its filters.
    rows = browser.find_elements(By.CSS_SELECTOR, "table.samples tbody tr.sample")
    assert len(rows) == len(results) == len(visible_rows(browser))
    passed = Counter((r["model"], r["passed"]) for r in results)
    browser.find_element(By.ID, "filter-fail").click()
    shown = visible_rows(browser)
    assert len(shown) == sum(n for (_, ok), n in passed.items() if not ok) > 0
    assert {r.find_element(By.CSS_SELECTOR, ".badge").text for r in shown} == {"FAIL"}
    Select(browser.find_element(By.ID, "filter-model")).select_by_value("weak")
    shown = visible_rows(browser)
    assert len(shown) == passed[("weak", False)]
    assert {r.get_attribute("data-model") for r in shown} == {"weak"}
    browser.find_element(By.ID, "filter-pass").click()
    assert len(visible_rows(browser)) == passed[("weak", True)]
    Select(browser.find_element(By.ID, "filter-model")).select_by_value("evil")
    evil_rows = visible_rows(browser)
    assert len(evil_rows) == passed[("evil", True)] > 0
    answer = evil_rows[0].find_element(By.CSS_SELECTOR, "pre.answer").text  # the payload shown as text
    assert "<img src=x onerror=" in answer and "<script>window.__pwned=2</script>" in answer
    evil_rows[0].find_element(By.CSS_SELECTOR, "td:nth-child(5) summary").click()
    assert "window.__pwned=2" in evil_rows[0].find_element(By.CSS_SELECTOR, "td:nth-child(5) pre").text
    assert browser.execute_script("return window.__pwned") is None
    browser.find_element(By.ID, "filter-all").click()
    Select(browser.find_element(By.ID, "filter-model")).select_by_value("")
    browser.find_element(By.ID, "filter-fail").click()
    counter = browser.find_element(By.ID, "shown-count")
    assert int(counter.get_attribute("data-matched")) == sum(not r["passed"] for r in results)

    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "report.png"
    browser.set_window_size(1440, 2600)
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    print(f"report screenshot: {shot}")


def test_long_runs_page_their_samples(tmp_path: Path, browser: Any) -> None:
    """1,000 samples show at first; "Show more" shows the rest; the counter says how many match."""
    run = tmp_path / "big-run"
    run.mkdir()
    records = [
        {"model": "m", "item_index": i, "sample_index": 0, "input": [{"role": "user", "content": f"q{i}"}],
         "output": f"a{i}", "reward": float(i % 3 == 0), "errors": [], "passed": i % 3 == 0}
        for i in range(1300)
    ]  # fmt: skip
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary = {"models": {"m": {"n": 1300, "mean_reward": 434 / 1300, "pass_rate": 434 / 1300}}}
    (run / "summary.json").write_text(json.dumps(summary))
    report = tmp_path / "big.html"
    proc = subprocess.run([str(RFT), "report", str(run), "-o", str(report)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    browser.get(report.as_uri())
    counter = browser.find_element(By.ID, "shown-count")
    assert (counter.get_attribute("data-shown"), counter.get_attribute("data-matched")) == ("1000", "1300")
    browser.find_element(By.ID, "more").click()
    assert (
        counter.get_attribute("data-shown") == "1300"
        and not browser.find_element(By.ID, "more").is_displayed()
    )
    browser.find_element(By.ID, "filter-pass").click()
    assert len(visible_rows(browser)) == 434 == int(counter.get_attribute("data-matched"))
