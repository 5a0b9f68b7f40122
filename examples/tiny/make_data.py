"""Write the tiny learning-proof task: pick the first or the last word of a list.

    python examples/tiny/make_data.py  # rewrites train.jsonl, valid.jsonl, warmup.jsonl here

Words are made-up two-syllable strings. Training answers and validation answers come from
disjoint word pools, so a model can only score on validation by learning the rule (which
position the instruction names), not by memorising answers. `warmup.jsonl` is what the tiny
base model is fine-tuned on before RL, over every word (training and validation pools): half
its lines ask for the second, third or fourth word and are answered right (this teaches
copying a word out of the list); the other half ask for the first or last word and are
answered with a word drawn uniformly from the list each time the line is used (so the base
model knows the format but not the rule for first/last, and is right about 1 time in 5).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"
LIST_LENGTH = 5
WORDS = 64  # 48 training answers, 16 validation answers


def words(seed: int = 0) -> list[str]:
    syllables = [c + v for c in CONSONANTS for v in VOWELS]
    rng = random.Random(seed)
    pool = sorted({rng.choice(syllables) + rng.choice(syllables) for _ in range(600)})
    rng.shuffle(pool)
    return pool[:WORDS]


def prompt(which: str, items: list[str]) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Which word is {which}?\n" + ",".join(items)}]


def task_line(rng: random.Random, pool: list[str]) -> dict:
    items = rng.sample(pool, LIST_LENGTH)
    which = rng.choice(["first", "last"])
    answer = items[0] if which == "first" else items[-1]
    return {"messages": prompt(which, items), "answer": answer, "position": which}


MIDDLE = {"second": 1, "third": 2, "fourth": 3}
MIDDLE_SHARE = float(__import__("os").environ.get("MIDDLE_SHARE", "0.5"))


def warmup_line(rng: random.Random, pool: list[str]) -> dict:
    items = rng.sample(pool, LIST_LENGTH)
    if rng.random() < MIDDLE_SHARE:  # the middle positions, answered right: teaches copying a word
        which = rng.choice(sorted(MIDDLE))
        return {"messages": prompt(which, items), "completions": [items[MIDDLE[which]]]}
    which = rng.choice(["first", "last"])  # the task's positions, answered by a random word
    return {"messages": prompt(which, items), "completions": items}


def write(path: Path, lines: list[dict]) -> None:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


def main() -> None:
    pool = words()
    train_pool, valid_pool = pool[:48], pool[48:]
    rng = random.Random(1)
    train = [task_line(rng, train_pool) for _ in range(1000)]
    valid = [task_line(rng, valid_pool) for _ in range(64)]
    warmup = [warmup_line(rng, pool) for _ in range(2000)]
    out = Path(__import__("os").environ.get("OUT", HERE))
    write(out / "train.jsonl", train)
    write(out / "valid.jsonl", valid)
    write(out / "warmup.jsonl", warmup)


if __name__ == "__main__":
    main()
