"""examples/rare_disease/make_warmup.py: train prompts answered by the baseline, chosen stably."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from types import ModuleType

from rftkit.plugins.models.hpo_case import Candidate, Case, render_messages


def _line(case_id: str, term: str) -> dict:
    case = Case(id=case_id, gene="X", present=[{"id": term, "label": "t"}])
    return {"messages": render_messages(case), "gene": "X", "id": case_id}


def test_warmup_lines_answer_in_the_response_format_and_are_stable(
    example_script: Callable[[str], ModuleType],
) -> None:
    module = example_script("make_warmup")
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
        # compact JSON, as structured decoding writes it (no space after ':' or ',')
        assert completion == json.dumps(answer, separators=(",", ":"))
        assert line["messages"] in [t["messages"] for t in train]


def test_warmup_orders_shuffle_the_same_genes_per_case_stably(
    example_script: Callable[[str], ModuleType],
) -> None:
    module = example_script("make_warmup")
    train = [_line(f"case-{i}", t) for i, t in enumerate(["HP:0001631", "HP:0007565"])]
    plain = module.warmup_lines(train, cases=2, genes=5)
    shuffled = module.warmup_lines(train, cases=2, genes=5, orders=6)
    assert module.warmup_lines(train, cases=2, genes=5, orders=6) == shuffled
    for one, many in zip(plain, shuffled, strict=True):
        (reply,) = one["completions"]
        ranked = json.loads(reply)["genes"]
        lists = [json.loads(c)["genes"] for c in many["completions"]]
        assert len(lists) == 6 and all(sorted(g) == sorted(ranked) for g in lists)
        assert any(g != ranked for g in lists)


def test_relabelled_lines_rename_the_candidates_in_the_prompt_and_the_replies_alike(
    example_script: Callable[[str], ModuleType],
) -> None:
    module = example_script("make_warmup")
    case = Case(id="case-0", gene="X", present=[{"id": "HP:0001631", "label": "t"}])
    plain = module.warmup_lines([_line("case-0", "HP:0001631")], cases=1, genes=3)
    ranked = json.loads(plain[0]["completions"][0])["genes"]
    rerank = {
        "messages": render_messages(
            case, [Candidate(gene=g, disease="D: a", explains=["t"]) for g in ranked]
        ),
        "gene": "X",
        "id": "case-0",
    }
    symbols = [f"SYM{i}" for i in range(50)]
    lines = module.warmup_lines([rerank], cases=1, genes=3, orders=4, relabels=2, symbols=symbols)
    assert module.warmup_lines([rerank], cases=1, genes=3, orders=4, relabels=2, symbols=symbols) == lines
    original, *copies = lines
    assert len(copies) == 2 and original["messages"] == rerank["messages"]
    for copy in copies:
        text = copy["messages"][-1]["content"]
        listed = _listed(text)
        assert all(s in symbols for s in listed) and len(set(listed)) == 3
        assert not any(g in text for g in ranked)  # the real symbols are gone from the list
        for reply in copy["completions"]:
            assert sorted(json.loads(reply)["genes"]) == sorted(listed)
    assert copies[0]["messages"] != copies[1]["messages"]


def _listed(text: str) -> list[str]:
    return re.findall(r"(?m)^\d+\. ([^:]+):", text)
