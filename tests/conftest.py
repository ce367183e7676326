"""Suite-wide guards."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _autograd_stays_enabled():
    """No test (or code under test) may leave autograd switched off for the tests after it."""
    yield
    if not torch.is_grad_enabled():
        torch.set_grad_enabled(True)
        pytest.fail("autograd was left disabled")
