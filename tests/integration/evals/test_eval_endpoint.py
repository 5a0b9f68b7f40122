"""`rft eval` against two models served by an OpenAI-compatible endpoint that this test runs.

The stub models answer each case with a ranked gene list built from the case number, so the
expected top-1 / top-5 / top-max, mean reward and pass rate are computed here independently,
from what the server actually answered, and compared with summary.json and results.jsonl.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
RFT = Path(sys.executable).with_name("rft")


def load_module(path: Path) -> Any:
    """A helper module beside the tests (no packages under tests/, so loaded by path)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


openai_stub = load_module(HERE / "openai_stub.py")

GENES = [f"GENE{k}" for k in range(1, 41)]
N_ITEMS = 28
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "ranking",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"genes": {"type": "array", "items": {"type": "string"}}},
            "required": ["genes"],
            "additionalProperties": False,
        },
    },
}
GRADER = {
    "type": "ranked_list",
    "name": "gene rank",
    "input": "{{sample.output_json.genes}}",
    "reference": "{{item.gene}}",
}


def reference(case: int) -> str:
    return GENES[(case * 7) % len(GENES)]


def items() -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "system", "content": "You rank candidate genes for rare-disease cases."},
                {"role": "user", "content": f"Case {i}: seizures, hypotonia. Rank the likely genes."},
            ],
            "gene": reference(i),
            "response_format": SCHEMA,
        }
        for i in range(N_ITEMS)
    ]


def ranking(case: int, rank: int | None) -> list[str]:
    """Eight distractors with the case's gene at `rank` (1-based), or absent."""
    gene = reference(case)
    others = [g for g in GENES if g != gene][case % 20 : case % 20 + 8]
    if rank is not None:
        others.insert(rank - 1, gene.lower() if case % 2 else gene)  # matching ignores case
    return others


def case_of(body: dict[str, Any]) -> int:
    return int(re.search(r"Case (\d+):", body["messages"][-1]["content"]).group(1))


def good(body: dict[str, Any]) -> tuple[str, str | None]:
    case = case_of(body)
    rank = 1 if case % 4 != 3 else 2
    return json.dumps({"genes": ranking(case, rank)}), f"Case {case}: <b>phenotype</b> overlap is strongest."


def weak(body: dict[str, Any]) -> tuple[str, str | None]:
    case = case_of(body)
    if case % 7 == 6:
        return f"<think>unsure</think>I would say {reference(case)}, maybe.", None  # not JSON
    rank = {0: None, 1: 1, 2: 5, 3: 6, 4: 8}[case % 5]
    return f"<think>case {case}</think>" + json.dumps({"genes": ranking(case, rank)}), None


def expected_metrics(answers: dict[int, str]) -> dict[str, float]:
    """What summary.json must say, from the raw answers: the ranked_list rules applied by hand."""
    top1 = top5 = topmax = reward = errors = 0
    for case, text in answers.items():
        text = re.sub(r"^<think>.*?</think>", "", text)
        try:
            genes = [g.lower() for g in json.loads(text)["genes"]]
        except json.JSONDecodeError:
            errors += 1
            continue
        gene = reference(case).lower()
        if gene in genes:
            rank = genes.index(gene) + 1
            top1 += rank == 1
            top5 += rank <= 5
            topmax += 1
            reward += 0.7 ** (rank - 1)
    n = len(answers)
    return {"top1": top1 / n, "top5": top5 / n, "topmax": topmax / n, "mean_reward": reward / n,
            "pass_rate": top1 / n, "errors": errors}  # fmt: skip


def write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "held_out.jsonl"
    data.write_text("".join(json.dumps(item) + "\n" for item in items()))
    grader = tmp_path / "grader.json"
    grader.write_text(json.dumps(GRADER))
    return data, grader


def rft(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RFT), *args], capture_output=True, text=True, timeout=timeout)


def read_results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_two_endpoint_models(tmp_path: Path) -> None:
    data, grader = write_inputs(tmp_path)
    out = tmp_path / "run"
    with openai_stub.serve({"good": good, "weak": weak}, fail_first=3) as stub:
        proc = rft("eval", "--data", str(data), "--grader", str(grader), "--model", f"good={stub.url}",
                   "--model", f"weak={stub.url}", "--output-dir", str(out), "--concurrency", "4")  # fmt: skip
        requests = list(stub.requests)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    results = read_results(out)

    # Every item reached the server once per model (after the three 503s were retried), schema passed through.
    assert len(requests) == 2 * N_ITEMS
    assert all(body["response_format"] == SCHEMA for body in requests)
    served: dict[str, dict[int, str]] = defaultdict(dict)
    for body in requests:
        served[body["model"]][case_of(body)] = (good if body["model"] == "good" else weak)(body)[0]

    assert set(summary["models"]) == {"good", "weak"}
    for name in ("good", "weak"):
        got, want = summary["models"][name], expected_metrics(served[name])
        assert got["n"] == N_ITEMS
        for metric in ("top1", "top5", "topmax", "mean_reward", "pass_rate"):
            assert got[metric] == pytest.approx(want[metric], abs=1e-6), (name, metric)
            lo, hi = got[f"{metric}_ci"]
            assert lo <= got[metric] <= hi
        assert got["errors"].get("sample_parse_error", 0) == want["errors"]

    # results.jsonl: one line per sample, holding what the server answered.
    assert len(results) == 2 * N_ITEMS
    for line in results:
        answer = served[line["model"]][line["item_index"]]
        assert answer.endswith(line["output"])
        assert line["input"] == items()[line["item_index"]]["messages"]
        assert isinstance(line["errors"], list)
    by_model = defaultdict(list)
    for line in results:
        by_model[line["model"]].append(line)
    assert sum(line["top1"] for line in by_model["good"]) == round(
        summary["models"]["good"]["top1"] * N_ITEMS
    )
    reasoned = next(line for line in by_model["good"] if line["item_index"] == 0)
    assert reasoned["reasoning"] == "Case 0: <b>phenotype</b> overlap is strongest."
    assert reasoned["output_json"]["genes"][0] == reference(0)
    inline = next(line for line in by_model["weak"] if line["item_index"] == 1)
    assert inline["reasoning"] == "case 1" and inline["rank"] == 1 and inline["passed"]


def test_several_samples_aggregate_per_item(tmp_path: Path) -> None:
    """Sample j of every item ranks the gene at j+1: per-sample top-1 is 1/3, best-of-3 top-1 is 1."""
    data, grader = write_inputs(tmp_path)
    seen: dict[int, int] = defaultdict(int)

    def varied(body: dict[str, Any]) -> tuple[str, str | None]:
        case = case_of(body)
        seen[case] += 1  # the stub serves one request at a time per case here (concurrency 1)
        return json.dumps({"genes": ranking(case, seen[case])}), None

    out = tmp_path / "run"
    with openai_stub.serve({"varied": varied}) as stub:
        proc = rft("eval", "--data", str(data), "--grader", str(grader), "--model", f"v={stub.url}#varied",
                   "--output-dir", str(out), "--samples", "3", "--concurrency", "1",
                   "--max-items", "10")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    m = json.loads((out / "summary.json").read_text())["models"]["v"]
    assert (m["n"], m["n_items"], m["samples_per_item"]) == (30, 10, 3)
    assert m["top1"] == pytest.approx(1 / 3) and m["top5"] == 1.0 and m["topmax"] == 1.0
    assert m["mean_reward"] == pytest.approx((1 + 0.7 + 0.49) / 3)
    assert m["best_of_n"]["top1"] == 1.0 and m["best_of_n"]["mean_reward"] == pytest.approx(1.0)
    assert sorted({line["sample_index"] for line in read_results(out)}) == [0, 1, 2]


def test_bad_input_exits_2(tmp_path: Path) -> None:
    data, grader = write_inputs(tmp_path)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(data.read_text().splitlines()[0] + "\n{not json\n" + '{"gene": "X"}\n')
    proc = rft("eval", "--data", str(broken), "--grader", str(grader), "--model", "m=http://127.0.0.1:9/v1",
               "--output-dir", str(tmp_path / "o"))  # fmt: skip
    assert proc.returncode == 2
    assert "broken.jsonl:2" in proc.stderr and "broken.jsonl:3" in proc.stderr
    proc = rft("eval", "--data", str(data), "--grader", str(grader), "--model", "m=no-such-plugin",
               "--output-dir", str(tmp_path / "o"))  # fmt: skip
    assert proc.returncode == 2 and "no-such-plugin" in proc.stderr


def test_grades_on_a_given_server(tmp_path: Path) -> None:
    """--server/--token: the grader is uploaded to a running service and graded there."""
    from rftkit.grader_service.embedded import start_local_service

    data, grader = write_inputs(tmp_path)
    out = tmp_path / "run"
    with start_local_service() as service, openai_stub.serve({"good": good}) as stub:
        args = ["eval", "--data", str(data), "--grader", str(grader), "--model", f"good={stub.url}",
                "--output-dir", str(out), "--max-items", "8", "--server", service.address]  # fmt: skip
        refused = rft(*args, "--token", "wrong-token")
        proc = rft(*args, "--token", service.token)
        graders = service.client().list_graders()
    assert refused.returncode != 0 and "UNAUTHENTICATED" in refused.stderr
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grader"]["graded_by"] == f"grader service at {service.address}"
    assert [g["name"] for g in graders] == ["gene rank"]
    assert summary["models"]["good"]["top1"] == pytest.approx(6 / 8)  # cases 3 and 7 rank second
