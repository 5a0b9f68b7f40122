"""`rft serve` puts its start-up heap out of the cyclic collector's reach once every grader type is loaded."""

from __future__ import annotations

import gc
import sys

from rftkit.cli.serve import _freeze_startup_heap


def test_the_start_up_heap_is_frozen_with_every_grader_type_loaded() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        _freeze_startup_heap()
        assert gc.get_freeze_count() > 10_000  # the modules, the grader types, their models
        assert "rftkit.plugins.graders.python" in sys.modules  # loaded before the freeze
    finally:
        gc.unfreeze()
