from __future__ import annotations

import pytest
from rftkit.grader_service.testing import sandbox_backend


@pytest.fixture(scope="session")
def sandbox() -> str:
    """The sandbox the service runs Python graders in: namespace when built, else process."""
    return sandbox_backend()
