"""Write the tiny learning-proof task: name the first or the last item of a list of letters.

    python examples/tiny/make_data.py  # rewrites train.jsonl, valid.jsonl, warmup.jsonl here

Prompts look like "Which item is last?\\ng,x,w,a,k" and the answer is one letter. The 26
letters are split into 18 training answers and 8 validation answers, and each prompt's list
is drawn from its own side's letters only, so validation answers never occur anywhere in the
training file: the model can only score on validation by learning the rule (which end the
instruction names), not by memorising answers.

`warmup.jsonl` is what the tiny base model is fine-tuned on (supervised, a few seconds)
before RL. It covers all 26 letters and teaches the format and copying, not the rule:
  - 30% one-item lists ("Which item is first?\\nh" -> "h"): first and last are the same item;
  - 35% asks for the second, third or fourth item, answered right;
  - 35% asks for the first or last item and is answered with an item drawn uniformly from
    the list each time the line is used (so right about 1 time in 5, whatever the instruction).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIST_LENGTH = 5
MIDDLE = {"second": 1, "third": 2, "fourth": 3}


def letter_pools(seed: int = 0) -> tuple[list[str], list[str]]:
    """(training answers, validation answers): a seeded 18/8 split of the alphabet."""
    pool = list("abcdefghijklmnopqrstuvwxyz")
    random.Random(seed).shuffle(pool)
    return pool[:18], pool[18:]


def prompt(which: str, items: list[str]) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Which item is {which}?\n" + ",".join(items)}]


def task_line(rng: random.Random, pool: list[str]) -> dict:
    items = rng.sample(pool, LIST_LENGTH)
    which = rng.choice(["first", "last"])
    answer = items[0] if which == "first" else items[-1]
    return {"messages": prompt(which, items), "answer": answer, "position": which}


def warmup_line(rng: random.Random, pool: list[str]) -> dict:
    draw = rng.random()
    if draw < 0.30:
        item = rng.choice(pool)
        return {"messages": prompt(rng.choice(["first", "last"]), [item]), "completions": [item]}
    items = rng.sample(pool, LIST_LENGTH)
    if draw < 0.65:
        which = rng.choice(sorted(MIDDLE))
        return {"messages": prompt(which, items), "completions": [items[MIDDLE[which]]]}
    return {"messages": prompt(rng.choice(["first", "last"]), items), "completions": items}


def write(path: Path, lines: list[dict]) -> None:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


def main() -> None:
    train_pool, valid_pool = letter_pools()
    rng = random.Random(1)
    write(HERE / "train.jsonl", [task_line(rng, train_pool) for _ in range(1000)])
    write(HERE / "valid.jsonl", [task_line(rng, valid_pool) for _ in range(64)])
    write(HERE / "warmup.jsonl", [warmup_line(rng, train_pool + valid_pool) for _ in range(2000)])


if __name__ == "__main__":
    main()
