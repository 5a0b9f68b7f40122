"""Write the agent learning-proof task: "What is the code of key K?", answerable only through a tool.

    python examples/agent/make_data.py  # rewrites the files below, here

Every key (two letters from g-z and a digit, say `qm4`) has a four-digit code that only the
`lookup` tool knows: `codes.json` is its table, read by the HTTP tool server (`lookup_server.py`)
and embedded in the sandboxed Python tool (`lookup_tool.py`). Keys, and so codes, are split:
400 training keys and 64 validation keys, so no validation code occurs anywhere in the training
or warm-up files. A model can only score on validation by calling the tool with the prompt's key
and copying the code the tool returns.

`warmup.jsonl` is what the tiny base model is fine-tuned on (supervised) before RL, on training
keys only. It teaches the call format, not when to use it:
  - half the lines are the question, answered (one reply drawn uniformly each time the line is
    used) with the right call `<tool_call>{"name": "lookup", "arguments": {"key": "qm4"}}</tool_call>`,
    a call with a wrong key (one character changed, a key the tool does not know), or one of two
    codes guessed from memory (right for training keys by chance only, never for validation);
  - half are the second turn: the question, a call, and the tool's answer; the reply copies the
    code the tool returned (or says `unknown` after the tool's error for an unknown key).
So the warmed-up model calls the tool right about one time in four; RL has to find out that
calling it, with the key from the question, is what pays.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
LETTERS = "ghijklmnopqrstuvwxyz"  # no a-f: a key never occurs inside a hex call id
TRAIN_KEYS, VALID_KEYS = 400, 64
TOOL = "lookup"


def question(key: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"What is the code of key {key}?"}]


def call_text(key: str) -> str:
    """The call as the warm-up writes it (the Hermes `<tool_call>` JSON format, parser `json`)."""
    return "<tool_call>" + json.dumps({"name": TOOL, "arguments": {"key": key}}) + "</tool_call>"


def tool_content(code: str | None) -> str:
    """The tool message the episode runner shows the model: the server's JSON reply, as JSON text."""
    return json.dumps({"code": code}) if code is not None else 'error: HTTP 404: {"error": "unknown key"}'


def make_table(seed: int = 0) -> tuple[dict[str, str], list[str], list[str]]:
    """(key -> code for every key, training keys, validation keys); codes are unique."""
    rng = random.Random(seed)
    keys = sorted({a + b + d for a in LETTERS for b in LETTERS for d in "0123456789"})
    chosen = rng.sample(keys, TRAIN_KEYS + VALID_KEYS)
    codes = rng.sample([f"{n:04d}" for n in range(10_000)], len(chosen))
    table = dict(zip(chosen, codes, strict=True))
    return table, chosen[:TRAIN_KEYS], chosen[TRAIN_KEYS:]


def wrong_key(rng: random.Random, key: str, table: dict[str, str]) -> str:
    """`key` with one character changed, into a key the tool does not know."""
    while True:
        i = rng.randrange(3)
        alphabet = "0123456789" if i == 2 else LETTERS
        other = key[:i] + rng.choice(alphabet) + key[i + 1 :]
        if other not in table:
            return other


def warmup_line(rng: random.Random, key: str, table: dict[str, str], train_codes: list[str]) -> dict:
    if rng.random() < 0.5:
        replies = [call_text(key), call_text(wrong_key(rng, key, table)), *rng.sample(train_codes, 2)]
        return {"messages": question(key), "completions": replies}
    called = key if rng.random() < 0.85 else wrong_key(rng, key, table)
    code = table.get(called)
    messages = [
        *question(key),
        {"role": "assistant", "content": call_text(called)},
        {"role": "tool", "content": tool_content(code)},
    ]
    return {"messages": messages, "completions": [code if code is not None else "unknown"]}


def task_line(key: str, table: dict[str, str]) -> dict:
    return {"messages": question(key), "answer": table[key], "key": key}


def write(path: Path, lines: list[dict]) -> None:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


def python_tool_source(table: dict[str, str]) -> str:
    """The sandboxed Python tool: the same table and answers as the HTTP server."""
    rows = "".join(f"    {json.dumps(k)}: {json.dumps(v)},\n" for k, v in sorted(table.items()))
    return (
        '"""The `lookup` tool as sandboxed Python (written by make_data.py from codes.json)."""\n\n'
        f"CODES = {{\n{rows}}}\n\n\n"
        "def lookup(key):\n"
        '    """The code of `key`, as the HTTP server answers it."""\n'
        "    if key not in CODES:\n"
        '        return \'error: HTTP 404: {"error": "unknown key"}\'  # as the server\'s 404 reads\n'
        '    return {"code": CODES[key]}\n'
    )


def main() -> None:
    table, train_keys, valid_keys = make_table()
    rng = random.Random(1)
    train_codes = [table[k] for k in train_keys]
    (HERE / "codes.json").write_text(json.dumps(table, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    (HERE / "lookup_tool.py").write_text(python_tool_source(table), encoding="utf-8")
    write(HERE / "train.jsonl", [task_line(k, table) for k in train_keys])
    write(HERE / "valid.jsonl", [task_line(k, table) for k in valid_keys])
    warm = [warmup_line(rng, rng.choice(train_keys), table, train_codes) for _ in range(3000)]
    write(HERE / "warmup.jsonl", warm)


if __name__ == "__main__":
    main()
