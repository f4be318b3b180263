"""Every benchmark runs on one thread, under the same allocator settings as the CLI stages."""

import pytest
import torch

from ticketbench.timing import tune_allocator


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def allocator():
    tune_allocator()
