"""Draw a run's learning curve: a text table (always) and a PNG (when Pillow is installed).

python examples/tiny/curve.py RUN_DIR [--out examples/tiny/curve]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load(run: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines() if x.strip()]
    train = [(e["step"], e["train_reward_mean"]) for e in events]
    valid = [(e["step"], e["valid_reward_mean"]) for e in events if "valid_reward_mean" in e]
    return train, valid


def text_curve(train: list[tuple[int, float]], valid: list[tuple[int, float]]) -> str:
    by_step = dict(train)
    lines = ["step  train(mean of 10)  valid   valid reward", "----  -----------------  -----   " + "-" * 40]
    for step, value in valid:
        window = [by_step[s] for s in range(max(0, step - 9), step + 1) if s in by_step]
        smooth = sum(window) / len(window)
        lines.append(f"{step:4d}  {smooth:17.3f}  {value:5.3f}   " + "#" * round(value * 40))
    return "\n".join(lines) + "\n"


def png_curve(train: list[tuple[int, float]], valid: list[tuple[int, float]], path: Path) -> bool:
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return False
    width, height, pad = 640, 360, 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    last = max(s for s, _ in train) or 1
    point = lambda s, v: (pad + (width - 2 * pad) * s / last, height - pad - (height - 2 * pad) * v)  # noqa: E731
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = point(0, tick)[1]
        draw.line([(pad, y), (width - pad, y)], fill=(225, 225, 225))
        draw.text((4, y - 6), f"{tick:.2f}", fill="black")
    smooth = [(s, sum(v for _, v in train[max(0, i - 9) : i + 1]) / len(train[max(0, i - 9) : i + 1]))
              for i, (s, _) in enumerate(train)]  # fmt: skip
    draw.line([point(s, v) for s, v in smooth], fill=(120, 160, 230), width=2)
    draw.line([point(s, v) for s, v in valid], fill=(220, 80, 40), width=3)
    draw.text((pad, 8), "reward by step: train (blue, mean of 10 steps), validation (red)", fill="black")
    draw.text((width - pad - 40, height - pad + 8), f"step {last}", fill="black")
    image.save(path)
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "curve")
    args = parser.parse_args()
    train, valid = load(args.run)
    text = text_curve(train, valid)
    args.out.with_suffix(".txt").write_text(text)
    print(text, end="")
    if png_curve(train, valid, args.out.with_suffix(".png")):
        print(f"wrote {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
