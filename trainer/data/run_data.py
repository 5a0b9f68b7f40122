"""A run's training and validation sets, loaded and checked the way `rft train` needs them."""

from __future__ import annotations

from ..config import DataConfig, EvalConfig
from .loader import load_dataset
from .schema import DatasetLine
from .split import answer_overlap


class AnswerOverlapError(ValueError):
    """Training and validation share answers, so validation would reward memorising."""


def load_run_data(data: DataConfig, evals: EvalConfig) -> tuple[list[DatasetLine], list[DatasetLine]]:
    """(train, valid); DatasetError names every bad line, AnswerOverlapError shared answers."""
    train, valid = load_dataset(data.train_file), load_dataset(data.valid_file)
    if data.answer_field:
        overlap = answer_overlap(train, valid, data.answer_field)
        if overlap:
            raise AnswerOverlapError(
                f"{len(overlap)} answer(s) of {data.answer_field!r} are in both training and validation "
                f"files (e.g. {overlap[:5]}); validation would reward memorising. "
                "Split with `rft data split --group-by`."
            )
    if evals.max_items:
        valid = valid[: evals.max_items]
    return train, valid
