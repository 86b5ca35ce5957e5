import pytest
import torch

torch.set_num_threads(1)  # tiny tensors: extra threads only add synchronisation


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
