"""One intra-op torch thread for a whole test module: import ``one_thread_module`` into the module (an
autouse fixture). On a shared 2-core machine, tiny models' spinning OpenMP threads run several times slower
(and two xdist workers with two threads each oversubscribe the cores)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread_module():
    """One intra-op thread for the module (its module-scoped fixtures train or time models too)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
