"""The report page: escaping of untrusted text, sections present or absent, run folder errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rftkit.evals.report.charts import BarSeries, bar_chart, nice_ticks
from rftkit.evals.report.page import render
from rftkit.evals.report.runs import RunDirError, load_runs

RFT = Path(sys.executable).with_name("rft")
EVIL = "</pre></details></td><script>alert(1)</script><img src=x onerror=alert(2)>\"'&"


def write_eval(folder: Path, model: str = EVIL, ranked: bool = True) -> None:
    folder.mkdir(parents=True)
    metrics = {"n": 1, "n_items": 1, "samples_per_item": 1, "mean_reward": 1.0, "mean_reward_ci": [1.0, 1.0],
               "pass_rate": 1.0, "pass_rate_ci": [0.2, 1.0], "errors": {EVIL: 1},
               "samples_with_errors": 0}  # fmt: skip
    if ranked:
        metrics |= {"top1": 1.0, "top1_ci": [0.2, 1.0], "top5": 1.0, "top5_ci": [0.2, 1.0], "topmax": 1.0,
                    "topmax_ci": [0.2, 1.0]}  # fmt: skip
    summary = {"data": EVIL, "n_items": 1, "samples_per_item": 1, "grader": {"name": EVIL, "type": "t"},
               "models": {model: metrics}}  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))
    line = {"model": model, "item_index": 0, "sample_index": 0, "input": [{"role": "user", "content": EVIL}],
            "output": EVIL, "reasoning": EVIL, "output_json": None, "reward": 1.0, "errors": [EVIL],
            "error_details": EVIL, "passed": True, "rank": 1}  # fmt: skip
    (folder / "results.jsonl").write_text(json.dumps(line) + "\n")


def test_untrusted_text_is_escaped_everywhere(tmp_path: Path) -> None:
    write_eval(tmp_path / "run")
    html = render(load_runs([tmp_path / "run"]))
    assert "<script>alert" not in html and "<img src=x" not in html
    assert html.count("<script>") == 1  # only the page's own filter script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing to fetch
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_sections_follow_the_runs(tmp_path: Path) -> None:
    write_eval(tmp_path / "a" / "run", model="base", ranked=False)
    write_eval(tmp_path / "b" / "run", model="base", ranked=False)
    train = tmp_path / "train"
    train.mkdir()
    (train / "events.jsonl").write_text(
        "".join(json.dumps({"step": s, "train_reward_mean": s / 10, "valid_reward_mean": s / 12}) + "\n"
                for s in range(1, 6))
    )  # fmt: skip
    html = render(load_runs([tmp_path / "a" / "run", tmp_path / "b" / "run", train]))
    assert 'data-model="a/run / base"' in html and 'data-model="b/run / base"' in html  # both runs kept apart
    assert 'id="training"' in html and "Top-1" not in html  # no ranked metrics for a plain grader
    only_training = render(load_runs([train]))
    assert 'id="training"' in only_training and 'id="samples"' not in only_training


def test_training_run_folder_with_its_summary(tmp_path: Path) -> None:
    """`rft train` also writes summary.json (final model, kept checkpoints): still a training run."""
    train = tmp_path / "train"
    train.mkdir()
    valid = {s: {"valid_reward_mean": s / 100} for s in range(0, 41, 10)}
    events = [{"step": s, "train_reward_mean": (s % 7) / 7} | valid.get(s, {}) for s in range(0, 41)]
    (train / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    summary = {"final_model": str(train / "final"), "base_model": "/models/base<x>",
               "checkpoints": [{"path": str(train / "checkpoints/step_000040"), "step": 40,
                                "valid_reward_mean": 0.4}]}  # fmt: skip
    (train / "summary.json").write_text(json.dumps(summary))
    runs = load_runs([train])
    assert not runs.evals and len(runs.trainings) == 1
    assert (
        runs.trainings[0].summary["final_model"].endswith("final") and len(runs.trainings[0].checkpoints) == 1
    )
    html = render(runs)
    assert 'data-metric="best_valid" data-value="0.400000"' in html and "(step 40)" in html
    assert 'data-metric="first_valid" data-value="0.000000"' in html
    assert "final model " + str(train / "final") in html and "/models/base&lt;x&gt;" in html
    assert "5-step moving mean" in html and 'class="mark"' in html  # 41 steps: smoothed train reward


def test_moving_average() -> None:
    from rftkit.evals.report.page import moving_average

    points = [(float(i), float(v)) for i, v in enumerate([0, 3, 6, 0, 3])]
    assert moving_average(points, 3) == [(0, 0), (1, 1.5), (2, 3), (3, 3), (4, 3)]


def test_run_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="neither an eval run"):
        load_runs([tmp_path])
    (tmp_path / "summary.json").write_text('{"other": 1}')
    with pytest.raises(RunDirError, match=r'no "models" object and no events\.jsonl'):
        load_runs([tmp_path])
    (tmp_path / "summary.json").unlink()
    (tmp_path / "events.jsonl").write_text('{"step": 1}\n{oops\n')
    with pytest.raises(RunDirError, match=r"events\.jsonl:2"):
        load_runs([tmp_path])
    proc = subprocess.run([str(RFT), "report", str(tmp_path / "missing"), "-o", str(tmp_path / "r.html")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "not a folder" in proc.stderr


def test_charts() -> None:
    assert nice_ticks(0.18, 0.62) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert nice_ticks(1, 40, 8) == [0, 5, 10, 15, 20, 25, 30, 35, 40]
    svg = bar_chart(["Top-1"], [BarSeries("<m>", "#000", [0.5], [(0.4, 0.6)])])
    assert svg.count("<rect") == 1 and "&lt;m&gt;" in svg and "<m>" not in svg


def test_distribution_buckets() -> None:
    from rftkit.evals.report.distribution import rank_shares, reward_shares

    ranks = [{"rank": r} for r in (1, 1, 2, 5, 6, 10, 11, 50, 51, None)]
    assert rank_shares(ranks) == pytest.approx([0.2, 0.2, 0.2, 0.2, 0.1, 0.1])
    rewards = [{"reward": r} for r in (0.0, 0.1, 0.25, 0.3, 0.5, 0.6, 0.9, 1.0)]
    assert reward_shares(rewards) == pytest.approx([1 / 8, 2 / 8, 2 / 8, 1 / 8, 1 / 8, 1 / 8])
    assert rank_shares([]) == [0.0] * 6


def test_pretty_json_keeps_lists_of_values_on_one_line() -> None:
    from rftkit.evals.report.page import pretty_json

    value = {"reasoning": "r", "genes": ["A", "B"], "nested": [{"a": 1}, [1, 2]], "empty": {}}
    text = pretty_json(value)
    assert json.loads(text) == value
    assert '  "genes": ["A", "B"],' in text.splitlines() and "    [1, 2]" in text.splitlines()


def test_templates_autoescape_and_ship_as_package_data(tmp_path: Path) -> None:
    """Every template is covered by pyproject's package-data (a wheel has them) and escapes values."""
    import fnmatch
    import tomllib

    from rftkit.evals.report.page import environment

    root = Path(__file__).resolve().parents[4]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    templates = Path(environment().loader.get_source(environment(), "report.html")[1]).resolve().parent
    for name in environment().list_templates():
        shipped = (templates / name).relative_to(root / "evals" / "report").as_posix()
        assert any(fnmatch.fnmatch(shipped, p) for p in patterns["rftkit.evals.report"]), shipped
    assert environment().from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    write_eval(tmp_path / "run")
    html = render(load_runs([tmp_path / "run"]), title="<i>t</i>")
    assert "<title>&lt;i&gt;t&lt;/i&gt;</title>" in html and "<i>t</i>" not in html
