"""examples/rare_disease/make_warmup.py: train prompts answered by the baseline, chosen stably."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from rftkit.plugins.models.hpo_case import Case, render_messages

SCRIPT = Path(__file__).resolve().parents[4] / "examples" / "rare_disease" / "make_warmup.py"


def _line(case_id: str, term: str) -> dict:
    case = Case(id=case_id, gene="X", present=[{"id": term, "label": "t"}])
    return {"messages": render_messages(case), "gene": "X", "id": case_id}


def test_warmup_lines_answer_in_the_response_format_and_are_stable() -> None:
    spec = importlib.util.spec_from_file_location("make_warmup", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train = [
        _line(f"case-{i}", t) for i, t in enumerate(["HP:0001631", "HP:0007565", "HP:0001166", "HP:0001250"])
    ]
    lines = module.warmup_lines(train, cases=3, genes=4)
    assert len(lines) == 3
    assert module.warmup_lines(list(reversed(train)), cases=3, genes=4) == lines
    for line in lines:
        (completion,) = line["completions"]
        answer = json.loads(completion)
        assert set(answer) == {"reasoning", "genes"} and len(answer["genes"]) == 4
        assert line["messages"] in [t["messages"] for t in train]
