"""A rich progress bar with step, train reward, best valid reward and time left; log lines above it."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


class Progress:
    def __init__(self, total: int, done: int = 0, *, enabled: bool = True) -> None:
        self.console = Console(stderr=True)
        self.bar: RichProgress | None = None
        if enabled:
            self.bar = RichProgress(
                TextColumn("step"), MofNCompleteColumn(), BarColumn(),
                TextColumn("reward {task.fields[reward]}  best valid {task.fields[best]}"),
                TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                console=self.console, transient=False,
            )  # fmt: skip
            self.task = self.bar.add_task("train", total=total, completed=done, reward="-", best="-")
            self.bar.start()

    def update(self, step: int, reward: float, best: float | None) -> None:
        if self.bar is not None:
            shown = "-" if best is None else f"{best:.3f}"
            self.bar.update(self.task, completed=step, reward=f"{reward:.3f}", best=shown)

    def log(self, message: str) -> None:
        """A line printed above the bar (stdout when there is no bar)."""
        if self.bar is not None:
            self.bar.console.print(message, highlight=False, markup=False)
        else:
            print(message, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
