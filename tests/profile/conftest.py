"""One torch thread for the profiling tests: tiny models run faster without OpenMP hand-offs, and the
machine is shared (the benchmark tests set their threads explicitly)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)
