import pytest
import torch

# Test tensors are tiny: extra intra-op threads only add synchronisation (costly on a busy machine).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
